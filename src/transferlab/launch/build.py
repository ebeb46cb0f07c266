"""Owns turning a composed training config into the parts of a run: its typed :class:`Settings` (converted once), the
:class:`~transferlab.data.datamodule.FolderDataModule`, the
:class:`~transferlab.training.classifier.ImageClassifier` and the Lightning ``Trainer`` with transferlab's
callbacks. The train command runs them; tests and benchmarks build a model or a datamodule the same way. Like resume
and the config checks, it works on the config by nature; the library modules it calls take typed values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning import Trainer

from transferlab.backbones.builder import preprocessing_for
from transferlab.backbones.head import Head
from transferlab.data.augment import Augment
from transferlab.data.datamodule import FolderDataModule
from transferlab.data.preprocessing import Preprocessing
from transferlab.runs.layout import SKIPPED_FILE, SPLITS_FILE
from transferlab.training.checkpointing import RandomStateCheckpoint, SafeCheckpointIO, check_checkpoint_classes
from transferlab.training.classifier import ImageClassifier
from transferlab.training.ema import EMA
from transferlab.training.finetuning import Finetuning
from transferlab.training.mixing import Mixing
from transferlab.training.nonfinite import StopOnNonFinite
from transferlab.training.progress import progress_callbacks, silence_known_noise
from transferlab.training.schedules import ScheduleHorizon


@dataclass(frozen=True)
class Settings:
    """The typed settings of a run, converted from the composed config once (the model keeps plain values)."""

    augment: Augment
    mixing: Mixing
    head: Head
    weights: Preprocessing  # what the weights expect, with data.image_size and data.resize_ratio where set

    @classmethod
    def of(cls, cfg: DictConfig) -> Settings:
        return cls(
            augment=Augment.from_config(cfg.augment),
            mixing=Mixing(**cfg.mixing),
            head=Head(**cfg.model.head),
            weights=preprocessing_for(cfg.model.backbone, cfg.data),
        )


def build_datamodule(cfg: DictConfig, settings: Settings, output_dir: Path, ckpt_path: Path | None) -> FolderDataModule:
    splits_file = cfg.data.splits_file
    if splits_file is None and ckpt_path is not None:
        # A resumed run keeps the split it started with: the one saved beside its checkpoints' folder.
        saved = ckpt_path.parent.parent / SPLITS_FILE
        splits_file = str(saved) if saved.is_file() else None
    datamodule = instantiate(
        cfg.data,
        splits_file=splits_file,
        skipped_file=str(output_dir / SKIPPED_FILE),
        # Plain data through instantiate (it would turn a dataclass into a config node); typed again inside.
        augment=settings.augment.to_dict(),
        preprocessing=settings.weights.to_dict(),
        _convert_="all",
    )
    if ckpt_path is not None:
        # Before the saved split is read: a checkpoint from other data fails with both class lists named.
        check_checkpoint_classes(ckpt_path, datamodule.find_images().class_names)
    datamodule.setup("fit")
    return datamodule


def build_model(cfg: DictConfig, settings: Settings, datamodule: FolderDataModule) -> ImageClassifier:
    class_weights = cfg.loss.class_weights
    if class_weights == "balanced":
        counts = datamodule.class_counts("train")
        class_weights = [sum(counts) / (len(counts) * count) for count in counts]
    elif class_weights is not None:
        class_weights = [float(w) for w in class_weights]
    return ImageClassifier(
        backbone=cfg.model.backbone,
        class_names=datamodule.class_names,
        strategy=OmegaConf.to_container(cfg.strategy, resolve=True),
        optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True),
        scheduler=OmegaConf.to_container(cfg.scheduler, resolve=True) if cfg.get("scheduler") else None,
        head_hidden_dim=settings.head.hidden_dim,
        head_dropout=settings.head.dropout,
        label_smoothing=cfg.loss.label_smoothing,
        class_weights=class_weights,
        preprocessing=datamodule.preprocessing.to_dict(),  # the data's size and crop, the weights' normalisation
        compile=bool(cfg.model.get("compile", False)),
        channels_last=cfg.model.get("channels_last", "auto"),
        mixing=asdict(settings.mixing),
        augment=settings.augment.to_dict(),  # tells TTA whether rot90 views apply
        classifier_hidden=cfg.model.get("classifier_hidden", True),
    )


def build_trainer(cfg: DictConfig) -> Trainer:
    callbacks = [instantiate(c) for c in cfg.callbacks.values() if c is not None]
    # Finetuning asks the module for its strategy (the module owns it).
    callbacks += [Finetuning(), RandomStateCheckpoint(), StopOnNonFinite()]
    if cfg.get("scheduler"):  # training longer on resume replans the schedule
        callbacks.append(ScheduleHorizon(OmegaConf.to_container(cfg.scheduler, resolve=True)))
    if cfg.ema.enabled:
        # Validation (so the best checkpoint's choice), the checkpoints' state_dict and test use the averaged
        # weights; each checkpoint also holds the raw ones (current_model_state), from which a resume continues.
        callbacks.append(EMA(decay=cfg.ema.decay))
    silence_known_noise()
    # progress=auto: Rich's bar in a terminal, one line per epoch otherwise; the line always goes to train.log.
    callbacks, progress_bar = progress_callbacks(
        callbacks, progress=cfg.get("progress", "auto"), model_summary=cfg.trainer.get("enable_model_summary", True)
    )
    extra = {} if progress_bar else {"enable_progress_bar": False}
    loggers = [instantiate(lg) for lg in (cfg.logger or {}).values() if lg is not None]
    # SafeCheckpointIO: atomic checkpoint writes and weights_only reads (see checkpoints.py).
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[SafeCheckpointIO()], **extra)
