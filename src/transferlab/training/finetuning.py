"""The one place that freezes and unfreezes: which stages train at which epoch, and how a frozen part is held.

It works on a :class:`~transferlab.backbones.record.Backbone`'s stages, whatever the family. A frozen part has
``requires_grad=False`` on its parameters *and* its modules in eval mode: BatchNorm running statistics never move
(fastai's ``BnFreeze``), and dropout and stochastic depth inside it are off, so a frozen backbone computes the
same features in training as in eval (and as a feature cache). LayerNorm and GroupNorm keep no statistics, so
``requires_grad`` is all they need. Whether a part is frozen is read off its parameters, so there is one source
of truth: :func:`hold_frozen` re-applies it after every ``model.train()``.

Lightning's ``BaseFinetuning`` is not used: it adds parameter groups to the optimizer when a stage unfreezes
(which breaks resuming and confuses schedulers) and its frozen BatchNorm still normalises with batch statistics
in train mode. Here every group exists from the start (see ``param_groups.py``); optimizers skip parameters that
have no gradient, so toggling ``requires_grad`` is all that freezing needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytorch_lightning import Callback, LightningModule, Trainer
from torch.nn.modules.batchnorm import _BatchNorm

from transferlab.backbones.record import Backbone
from transferlab.checks import integer, number

STRATEGIES = ("scratch", "feature_extraction", "finetune")


@dataclass(frozen=True)
class Strategy:
    """How a run trains the backbone; built from the ``strategy`` config group.

    Stages are the backbone's own (``Backbone.stage_names``: ``stem, layer1 … layer4`` for a ResNet, ``block1 …
    block5, classifier`` for a VGG, timm's groups for a timm model), input to output; the head always trains.

    Attributes:
        name: ``scratch``, ``feature_extraction`` or ``finetune``.
        freeze_epochs: finetune only: epochs that train the head alone before the backbone unfreezes.
        unfreeze_from: finetune only: the earliest stage that ever trains, by name (``layer3`` keeps the stages
            before it frozen for the whole run) or counted from the end (``-1``: the last stage only, ``-2``: the
            last two); ``None``: every stage.
        unfreeze_every: finetune only: gradual unfreezing; after the warm-up one more stage (from the last down to
            ``unfreeze_from``) unfreezes every ``unfreeze_every`` epochs. 0 unfreezes them all at once.
        backbone_lr_scale: backbone learning rate as a fraction of the head's.
        layer_decay: each stage gets the rate of the stage after it times this (discriminative rates).
        freeze_layers: finetune only: the first N parameterised layers of the backbone (an int), or that fraction
            of them (a float in (0, 1), rounded), stay frozen for the whole run. A layer is a module that owns
            parameters itself (a conv, a norm, a linear), counted in forward (registration) order, head excluded:
            the Keras recipe "freeze the first 700 of 782 layers" in a unit that means the same for every family.
    """

    name: str
    freeze_epochs: int = 0
    unfreeze_from: str | int | None = None
    unfreeze_every: int = 0
    backbone_lr_scale: float = 1.0
    layer_decay: float | None = None
    freeze_layers: int | float | None = None

    def __post_init__(self) -> None:
        # Types first: a string from the command line ("two") would otherwise fail later, deep in a comparison.
        integer("strategy.freeze_epochs", self.freeze_epochs, low=0)
        integer("strategy.unfreeze_every", self.unfreeze_every, low=0)
        number("strategy.backbone_lr_scale", self.backbone_lr_scale, low=0, low_open=True)
        if self.layer_decay is not None:
            number("strategy.layer_decay", self.layer_decay, low=0, high=1, low_open=True, hint="or null")
        if self.name not in STRATEGIES:
            raise ValueError(f"strategy.name={self.name!r} is not a strategy; choose one of: {', '.join(STRATEGIES)}")
        start = self.unfreeze_from
        if start is not None and (isinstance(start, bool) or not isinstance(start, str | int) or _non_negative(start)):
            raise ValueError(
                f"strategy.unfreeze_from={start!r} must be a stage name, a negative number of stages counted from "
                "the end (-1: the last stage only), or null (every stage)"
            )
        layers = self.freeze_layers
        if layers is not None and (
            isinstance(layers, bool)
            or not isinstance(layers, int | float)
            or (isinstance(layers, int) and layers < 0)
            or (isinstance(layers, float) and not 0 < layers < 1)
        ):
            raise ValueError(
                f"strategy.freeze_layers={layers!r} must be a number of layers (an integer >= 0), a fraction of them "
                "(a float between 0 and 1), or null"
            )
        finetune_only = self.freeze_epochs or self.unfreeze_every or start is not None or layers is not None
        if self.name != "finetune" and finetune_only:
            raise ValueError(
                "strategy.freeze_epochs, unfreeze_every, unfreeze_from and freeze_layers apply to strategy=finetune "
                f"only, not to strategy={self.name}"
            )

    def check_backbone(self, backbone: Backbone) -> None:
        """Raises ValueError when a stage or layer count does not exist in ``backbone``, listing what does."""
        stages = backbone.stage_names
        start = self.unfreeze_from
        if isinstance(start, str) and start not in stages:
            raise ValueError(
                f"strategy.unfreeze_from={start!r} is not a stage of {backbone.name}; its stages, input to output: "
                f"{', '.join(stages)} (or -1 … -{len(stages)}, counted from the end)"
            )
        if isinstance(start, int) and -start > len(stages):
            raise ValueError(
                f"strategy.unfreeze_from={start}: {backbone.name} has {len(stages)} stages ({', '.join(stages)})"
            )
        count = len(backbone.layers())
        if isinstance(self.freeze_layers, int) and self.freeze_layers > count:
            raise ValueError(
                f"strategy.freeze_layers={self.freeze_layers}: {backbone.name} has {count} parameterised layers "
                "(modules owning parameters, head excluded)"
            )

    def frozen_layers(self, num_layers: int) -> int:
        """How many of the backbone's ``num_layers`` first layers stay frozen for the whole run."""
        if self.freeze_layers is None:
            return 0
        if isinstance(self.freeze_layers, float):
            return round(self.freeze_layers * num_layers)
        return min(self.freeze_layers, num_layers)

    def trainable_stages(self, epoch: int, stages: Sequence[str]) -> set[str]:
        """The stages (of ``stages``, input to output) that train during ``epoch`` (0-based); the head always."""
        if self.name == "feature_extraction" or epoch < self.freeze_epochs:
            return {"head"}
        if self.name == "scratch":
            return {*stages, "head"}
        start = self.unfreeze_from
        first = 0 if start is None else stages.index(start) if isinstance(start, str) else max(len(stages) + start, 0)
        # From the last stage down to unfreeze_from, the deepest first (ULMFiT-style gradual unfreezing).
        deepest_first = list(stages[first:])[::-1]
        if self.unfreeze_every:
            deepest_first = deepest_first[: 1 + (epoch - self.freeze_epochs) // self.unfreeze_every]
        return {"head", *deepest_first}

    def unfreeze_epochs(self, stages: Sequence[str]) -> list[int]:
        """The epochs (0-based) at which the trainable set grows: the end of the frozen warm-up, and with gradual
        unfreezing each later epoch that adds a stage; empty when the set never changes during training."""
        if self.name != "finetune":
            return []
        stages_to_open = len(self.ever_trainable_stages(stages) - {"head"})
        steps = stages_to_open if self.unfreeze_every else min(stages_to_open, 1)
        return [e for e in (self.freeze_epochs + k * self.unfreeze_every for k in range(steps)) if e > 0]

    def ever_trainable_stages(self, stages: Sequence[str]) -> set[str]:
        """The stages that train at some epoch (the trainable set only grows with the epoch)."""
        return self.trainable_stages(2**62, stages)


def _non_negative(value: str | int) -> bool:
    return isinstance(value, int) and value >= 0


def set_trainable_stages(backbone: Backbone, trainable: set[str], *, frozen_layers: int = 0) -> None:
    """Toggle ``requires_grad`` stage by stage (then freeze the first ``frozen_layers`` layers) and put every
    frozen part in eval mode."""
    training = backbone.net.training
    for stage in backbone.stages_with_head():
        for param in stage.parameters():
            param.requires_grad_(stage.name in trainable)
        if stage.name in trainable and training:
            for module in stage.modules:
                module.train()
    for layer in backbone.layers()[:frozen_layers]:
        for param in layer.parameters(recurse=False):
            param.requires_grad_(False)
    hold_frozen(backbone)


def apply_strategy(backbone: Backbone, strategy: Strategy, epoch: int | None = None) -> None:
    """Freeze ``backbone`` as ``strategy`` has it at ``epoch``; ``None``: every stage that ever trains."""
    stages = backbone.stage_names
    trainable = strategy.ever_trainable_stages(stages) if epoch is None else strategy.trainable_stages(epoch, stages)
    set_trainable_stages(backbone, trainable, frozen_layers=strategy.frozen_layers(len(backbone.layers())))


def hold_frozen(backbone: Backbone) -> None:
    """Keep frozen parts in eval mode: every module of a stage without a trainable parameter (BatchNorm statistics,
    dropout, stochastic depth), and, in a partly frozen stage, each BatchNorm whose parameters are frozen.

    Must run after every ``train()`` call, which would otherwise switch them back to training behaviour.
    """
    for stage in backbone.stages:
        if not any(param.requires_grad for param in stage.parameters()):
            for module in stage.modules:
                module.eval()
    for module in backbone.net.modules():
        if isinstance(module, _BatchNorm) and module.weight is not None and not module.weight.requires_grad:
            module.eval()


class Finetuning(Callback):
    """Applies the module's :class:`Strategy` (``pl_module.strategy``: the module owns it) to ``pl_module.backbone``
    at the start of fit and of every training epoch.

    The trainable set is a pure function of the epoch, so a resumed run needs no saved state to be frozen
    exactly as the uninterrupted run was.
    """

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        # Before DDP wraps the model: every stage that will ever train must require grad now, or DDP would
        # never synchronise its gradients. Stages frozen for the whole run stay out of DDP entirely.
        apply_strategy(pl_module.backbone, pl_module.strategy)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        apply_strategy(pl_module.backbone, pl_module.strategy, trainer.current_epoch)
