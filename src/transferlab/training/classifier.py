"""``ImageClassifier``: the LightningModule: forward, loss, metrics, and the optimizer with its parameter groups.

It takes plain values only (names, numbers, lists, dicts), so ``ImageClassifier.load_from_checkpoint(path)``
rebuilds it from the checkpoint alone, class names and preprocessing included, and every checkpoint loads with
``torch.load(weights_only=True)``. Pretrained weights are not its business: ``commands/train.py`` loads them into a new
module, so reloading a checkpoint never downloads anything.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, NoReturn

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from pytorch_lightning import LightningModule
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
)

from transferlab.backbones.builder import build_backbone
from transferlab.data.preprocessing import Preprocessing
from transferlab.data.transforms import normalize_images
from transferlab.training.finetuning import Strategy, hold_frozen
from transferlab.training.mixing import build_batch_mixing
from transferlab.training.param_groups import build_param_groups
from transferlab.training.schedules import build_scheduler

log = logging.getLogger(__name__)


class ImageClassifier(LightningModule):
    """A torchvision or timm backbone with a new head, trained according to a
    :class:`~transferlab.training.finetuning.Strategy`.

    Args:
        backbone: torchvision model name (``resnet18``, ``vgg16``) or ``timm/<name>``; ``self.backbone`` is its
            :class:`~transferlab.backbones.record.Backbone` record (stages, head, preprocessing), ``self.net`` the
            network.
        classifier_hidden: keep the hidden layers of a torchvision classifier (VGG, AlexNet, MobileNetV3, MaxViT)
            as the last stage (see :func:`~transferlab.backbones.builder.build_backbone`).
        class_names: the classes in label order (sorted folder names); their number sizes the head.
        strategy: the ``strategy`` config as a dict (see :class:`~transferlab.training.finetuning.Strategy`).
        optimizer: a Hydra config with ``_partial_: true`` for a torch optimizer; its ``lr`` is the head's.
        scheduler: a Hydra ``_partial_`` config of a ``transferlab.training.schedules`` factory, or ``None``.
        head_hidden_dim, head_dropout: the head's optional hidden layer and dropout.
        label_smoothing: cross-entropy label smoothing.
        class_weights: one cross-entropy weight per class, or ``None``.
        preprocessing: what inference must do to an image, as plain data
            (:meth:`~transferlab.data.preprocessing.Preprocessing.to_dict`); ``self.preprocessing`` is the typed
            value (None without).
        compile: ``torch.compile`` the network when a Trainer sets the model up (``model.compile``).
        channels_last: NHWC memory format for the network and its input batches (``model.channels_last``);
            ``auto``: on CUDA devices only, where cuDNN's convolutions are fastest in it (tensor cores).
        mixing: ``mixup_alpha`` and ``cutmix_alpha`` (see :class:`~transferlab.training.mixing.Mixing`): training
            batches are mixed and the loss takes soft targets; metrics still compare with the hard labels.
        augment: the ``augment`` config the run trained with (the datamodule applies it, not this module); kept so
            that test-time augmentation knows whether rot90 views belong. None in older checkpoints: no rot90.
    """

    def __init__(
        self,
        *,
        backbone: str,
        class_names: list[str],
        strategy: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None = None,
        head_hidden_dim: int | None = None,
        head_dropout: float = 0.0,
        label_smoothing: float = 0.0,
        class_weights: list[float] | None = None,
        preprocessing: Mapping[str, Any] | None = None,
        compile: bool = False,
        channels_last: bool | str = "auto",
        mixing: dict[str, float] | None = None,
        classifier_hidden: bool = True,
        augment: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.class_names = list(class_names)
        self.num_classes = len(self.class_names)
        self.strategy = Strategy(**strategy)
        self.preprocessing = Preprocessing.from_dict(preprocessing) if preprocessing else None
        self.backbone = build_backbone(
            backbone,
            self.num_classes,
            hidden_dim=head_hidden_dim,
            dropout=head_dropout,
            image_size=self.preprocessing.image_size if self.preprocessing else None,
            classifier_hidden=classifier_hidden,
        )
        self.strategy.check_backbone(self.backbone)
        self.net = self.backbone.net
        self._register_class_weights(class_weights)
        self.batch_mixing = build_batch_mixing(self.num_classes, **(mixing or {}))
        self._register_pixel_stats(self.preprocessing)
        self._add_metrics()
        self.test_report: dict[str, Any] = {}
        self._compiled = False

    def _register_class_weights(self, class_weights: list[float] | None) -> None:
        """The cross-entropy weights as a buffer (``None``: unweighted), one per class."""
        if class_weights is not None and len(class_weights) != self.num_classes:
            raise ValueError(
                f"loss.class_weights has {len(class_weights)} entries but the data has {self.num_classes} classes"
            )
        self.register_buffer(
            "class_weights",
            None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32),
        )

    def _register_pixel_stats(self, preprocessing: Preprocessing | None) -> None:
        """``pixel_mean`` and ``pixel_std`` of the preprocessing as buffers (``None`` without preprocessing)."""
        # On the model's device with it, so that normalising a batch copies nothing from the host (see normalize);
        # not persistent: the checkpoint's hparams already carry them, and state_dict keys stay the network's.
        for name, key in (("pixel_mean", "mean"), ("pixel_std", "std")):
            values = None if preprocessing is None else torch.tensor(getattr(preprocessing, key), dtype=torch.float32)
            self.register_buffer(name, values, persistent=False)

    def _add_metrics(self) -> None:
        """Accuracy and macro F1 (top-5 accuracy too beyond 5 classes) per stage; per-class accuracy and the
        confusion matrix for the test report."""
        metrics = {
            "acc": MulticlassAccuracy(self.num_classes, average="micro"),
            "f1": MulticlassF1Score(self.num_classes, average="macro"),
        }
        if self.num_classes > 5:
            metrics["acc_top5"] = MulticlassAccuracy(self.num_classes, top_k=5, average="micro")
        # No compute groups: torchmetrics merges metrics whose states are equal after the first update, and a first
        # batch without a top-5 hit (an untrained model's sanity check, many classes) leaves F1 sharing top-5
        # accuracy's state for the rest of the run: a macro F1 that is not the macro F1 (issue 24).
        collection = MetricCollection(metrics, compute_groups=False)
        self.train_metrics = collection.clone(prefix="train/")
        self.val_metrics = collection.clone(prefix="val/")
        self.test_metrics = collection.clone(prefix="test/")
        self.test_per_class_acc = MulticlassAccuracy(self.num_classes, average="none")
        self.test_confusion = MulticlassConfusionMatrix(self.num_classes)

    def forward(self, images: Tensor) -> Tensor:
        """Logits of a uint8 image batch (normalised here), a normalised float batch, or pooled features."""
        if images.ndim == 2:  # pooled backbone features from a feature cache (data.cache_features=true)
            return self.backbone.head(images)
        return self.net(self.normalize(images))

    def normalize(self, images: Tensor) -> Tensor:
        """uint8 images, as the transforms give them, to the network's normalised float input; anything else is
        taken as already normalised (or as features) and returned unchanged."""
        if images.dtype != torch.uint8:
            return images
        if self.pixel_mean is None:
            raise ValueError("uint8 images need the model's preprocessing (mean, std) to be normalised; none is set")
        return normalize_images(images, self.pixel_mean, self.pixel_std)

    def predict_images(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Removed: training code does not reach up into inference. Use ``transferlab.Predictor(model)``."""
        raise AttributeError(
            "ImageClassifier.predict_images is gone: use transferlab.Predictor(model).predict(images, top_k=3, "
            "tta=False), which takes the same images and returns the same predictions"
        )

    def configure_model(self) -> None:
        # Called by the Trainer at every fit/test before the model moves to its device; both steps are idempotent.
        # Checkpoints are unaffected: Module.compile() keeps the parameter names, and channels_last only strides.
        if self._use_channels_last():
            self.net.to(memory_format=torch.channels_last)
        if self.hparams.get("compile") and not self._compiled:
            self.net.compile()
            self._compiled = True

    def _use_channels_last(self) -> bool:
        setting = self.hparams.get("channels_last", "auto")
        if setting == "auto":
            return self._trainer is not None and self.trainer.strategy.root_device.type == "cuda"
        return bool(setting)

    def train(self, mode: bool = True) -> ImageClassifier:
        # Lightning switches the whole model to train mode after every validation; frozen parts (BatchNorm
        # statistics, dropout) must not follow (see finetuning.py).
        super().train(mode)
        if mode:
            hold_frozen(self.backbone)
        return self

    def _shared_step(self, batch: tuple[Tensor, Tensor], metrics: MetricCollection, stage: str) -> Tensor:
        images, labels = batch
        # Loaders ship uint8 batches (4x less to copy out of workers and onto the GPU); normalised here, on the
        # device, before channels_last and batch mixing see them.
        images = self.normalize(images)
        if images.ndim == 4 and self._use_channels_last():
            images = images.contiguous(memory_format=torch.channels_last)
        targets = labels
        if stage == "train" and self.batch_mixing is not None:
            images, targets = self.batch_mixing(images, labels)  # soft targets, for the loss only
        logits = self(images)
        loss = F.cross_entropy(logits, targets, weight=self.class_weights, label_smoothing=self.hparams.label_smoothing)
        metrics.update(logits, labels)
        on_step = stage == "train"
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, batch_size=len(labels))
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=stage != "train", batch_size=len(labels))
        return loss if stage != "test" else logits

    def on_train_epoch_start(self) -> None:
        # Each epoch, not once: a gradual unfreezing can make BatchNorm layers train from a later epoch on.
        datamodule = getattr(self.trainer, "datamodule", None)
        if getattr(datamodule, "batch_size", None) == 1 and self._batch_norm_trains():
            raise ValueError(
                f"data.batch_size=1 cannot train this model's BatchNorm layers ({self.hparams.backbone}: BatchNorm "
                "needs more than one image per batch in training mode): set data.batch_size=2 or more (with "
                "trainer.accumulate_grad_batches for memory), train only the head (strategy=feature_extraction), "
                "or pick a backbone without BatchNorm (a ViT or ConvNeXt)."
            )

    def training_step(self, batch: tuple[Tensor, Tensor] | None, batch_idx: int) -> Tensor | None:
        # A step on nothing, which Lightning's automatic optimisation skips: a batch whose files were all unreadable
        # (data.bad_images=skip; see SkippingDataLoader), or one left with a single image by them, on which
        # BatchNorm cannot run in training mode.
        if batch is None or (len(batch[1]) == 1 and self._batch_norm_trains()):
            log.warning(
                "Skipped training batch %d of epoch %d: %s",
                batch_idx,
                self.current_epoch,
                "every file in it was unreadable" if batch is None else "one image left, too few for BatchNorm",
            )
            return None
        return self._shared_step(batch, self.train_metrics, "train")

    def _batch_norm_trains(self) -> bool:
        return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training for m in self.modules())

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._shared_step(batch, self.val_metrics, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        logits = self._shared_step(batch, self.test_metrics, "test")
        self.test_per_class_acc.update(logits, batch[1])
        self.test_confusion.update(logits, batch[1])

    def on_test_epoch_start(self) -> None:
        self.test_per_class_acc.reset()
        self.test_confusion.reset()

    def on_test_epoch_end(self) -> None:
        # torchmetrics synchronises across DDP processes in compute(), so every rank sees the full test set.
        per_class = self.test_per_class_acc.compute().tolist()
        self.test_report = {
            "per_class_acc": dict(zip(self.class_names, per_class, strict=True)),
            "confusion_matrix": self.test_confusion.compute().tolist(),
        }

    def configure_optimizers(self) -> Any:
        optimizer_factory = instantiate(self.hparams.optimizer)
        lr = optimizer_factory.keywords.get("lr")  # checked by build_param_groups
        optimizer = optimizer_factory(build_param_groups(self.backbone, self.strategy, lr=lr))
        if not self.hparams.scheduler:
            return optimizer
        # Planned for the run's length; a resume that changes it replans (schedules.ScheduleHorizon).
        scheduler = build_scheduler(self.hparams.scheduler, optimizer, self.trainer)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
