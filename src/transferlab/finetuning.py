"""The one place that freezes and unfreezes: which stages train at which epoch, and how a frozen stage is held.

A frozen stage has ``requires_grad=False`` on its parameters *and* its BatchNorm layers in eval mode, so their
running statistics never move (fastai's ``BnFreeze``). Whether a BatchNorm is frozen is read off its parameters,
so there is one source of truth: :func:`hold_frozen_batchnorm` re-applies it after every ``model.train()``.

Lightning's ``BaseFinetuning`` is not used: it adds parameter groups to the optimizer when a stage unfreezes
(which breaks resuming and confuses schedulers) and its frozen BatchNorm still normalises with batch statistics
in train mode. Here every group exists from the start (see ``param_groups.py``); optimizers skip parameters that
have no gradient, so toggling ``requires_grad`` is all that freezing needs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from pytorch_lightning import Callback, LightningModule, Trainer
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from transferlab.backbones import BACKBONE_STAGES, stage_modules

STRATEGIES = ("scratch", "feature_extraction", "finetune")

# Lightning warns about modules in eval mode when training starts; frozen BatchNorm is exactly that, on purpose.
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode", category=UserWarning)


@dataclass(frozen=True)
class Strategy:
    """How a run trains the backbone; built from the ``strategy`` config group.

    Attributes:
        name: ``scratch``, ``feature_extraction`` or ``finetune``.
        freeze_epochs: finetune only: epochs that train the head alone before the backbone unfreezes.
        unfreeze_from: finetune only: the earliest stage that ever trains (``layer3`` keeps stem, layer1 and
            layer2 frozen for the whole run); ``stem`` trains everything.
        unfreeze_every: finetune only: gradual unfreezing; after the warm-up one more stage (from layer4 down to
            ``unfreeze_from``) unfreezes every ``unfreeze_every`` epochs. 0 unfreezes them all at once.
        backbone_lr_scale: backbone learning rate as a fraction of the head's.
        layer_decay: each stage below layer4 gets the stage above's rate times this (discriminative rates).
    """

    name: str
    freeze_epochs: int = 0
    unfreeze_from: str = "stem"
    unfreeze_every: int = 0
    backbone_lr_scale: float = 1.0
    layer_decay: float | None = None

    def __post_init__(self) -> None:
        # Types first: a string from the command line ("two") would otherwise fail later, deep in a comparison.
        for key in ("freeze_epochs", "unfreeze_every"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"strategy.{key}={value!r} must be an integer >= 0")
        for key in ("backbone_lr_scale", "layer_decay"):
            value = getattr(self, key)
            if not (value is None and key == "layer_decay") and (
                not isinstance(value, int | float) or isinstance(value, bool)
            ):
                raise ValueError(f"strategy.{key}={value!r} must be a number")
        if self.name not in STRATEGIES:
            raise ValueError(f"strategy.name={self.name!r} is not a strategy; choose one of: {', '.join(STRATEGIES)}")
        if self.unfreeze_from not in BACKBONE_STAGES:
            raise ValueError(
                f"strategy.unfreeze_from={self.unfreeze_from!r} is not a stage; choose one of: "
                f"{', '.join(BACKBONE_STAGES)}"
            )
        if self.freeze_epochs < 0 or self.unfreeze_every < 0:
            raise ValueError(
                f"strategy.freeze_epochs={self.freeze_epochs} and strategy.unfreeze_every={self.unfreeze_every} "
                "must be >= 0"
            )
        if not self.backbone_lr_scale > 0:
            raise ValueError(f"strategy.backbone_lr_scale={self.backbone_lr_scale} must be > 0")
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise ValueError(f"strategy.layer_decay={self.layer_decay} must be in (0, 1], or null")
        if self.name != "finetune" and (self.freeze_epochs or self.unfreeze_every or self.unfreeze_from != "stem"):
            raise ValueError(
                f"strategy.freeze_epochs, unfreeze_every and unfreeze_from apply to strategy=finetune only, "
                f"not to strategy={self.name}"
            )

    def trainable_stages(self, epoch: int) -> set[str]:
        """The stages that train during ``epoch`` (0-based); the head always trains."""
        if self.name == "feature_extraction" or epoch < self.freeze_epochs:
            return {"head"}
        if self.name == "scratch":
            return set(BACKBONE_STAGES) | {"head"}
        # Stages from layer4 down to unfreeze_from, the deepest first (ULMFiT-style gradual unfreezing).
        deepest_first = BACKBONE_STAGES[BACKBONE_STAGES.index(self.unfreeze_from) :][::-1]
        if self.unfreeze_every:
            deepest_first = deepest_first[: 1 + (epoch - self.freeze_epochs) // self.unfreeze_every]
        return {"head", *deepest_first}

    def ever_trainable_stages(self) -> set[str]:
        """The stages that train at some epoch (the trainable set only grows with the epoch)."""
        return self.trainable_stages(epoch=2**62)


def set_trainable_stages(net: nn.Module, trainable: set[str]) -> None:
    """Toggle ``requires_grad`` stage by stage and put frozen BatchNorm layers in eval mode."""
    for stage, modules in stage_modules(net).items():
        for module in modules:
            module.requires_grad_(stage in trainable)
            if stage in trainable and net.training:
                module.train()
    hold_frozen_batchnorm(net)


def hold_frozen_batchnorm(net: nn.Module) -> None:
    """Keep BatchNorm layers whose parameters are frozen in eval mode, so their running statistics never move.

    Must run after every ``train()`` call, which would otherwise switch them back to batch statistics.
    """
    for module in net.modules():
        if isinstance(module, _BatchNorm) and module.weight is not None and not module.weight.requires_grad:
            module.eval()


class Finetuning(Callback):
    """Applies a :class:`Strategy` to ``pl_module.net`` at the start of fit and of every training epoch.

    The trainable set is a pure function of the epoch, so a resumed run needs no saved state to be frozen
    exactly as the uninterrupted run was.
    """

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        # Before DDP wraps the model: every stage that will ever train must require grad now, or DDP would
        # never synchronise its gradients. Stages frozen for the whole run stay out of DDP entirely.
        set_trainable_stages(pl_module.net, self.strategy.ever_trainable_stages())

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        set_trainable_stages(pl_module.net, self.strategy.trainable_stages(trainer.current_epoch))
