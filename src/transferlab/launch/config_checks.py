"""Checks of the composed training config, so that a mistake fails before anything slow, naming its key.

Hydra already refuses unknown group options (``optimizer=adam`` lists the choices) and unknown keys; OmegaConf
cannot type-check the ``_target_`` configs, whose keys are a constructor's arguments. Each rule is stated once: where
a library constructor checks its argument (the data module, the transforms, the splits, the head, the strategy, the
optimizer's rate, batch mixing, the bad-images policy), :func:`validate` calls that same check with the config's
value; only the keys that no constructor of ours takes are checked here.
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig, OmegaConf

from transferlab.backbones.builder import check_backbone_name, outline_backbone, preprocessing_for
from transferlab.backbones.head import Head
from transferlab.checks import boolean, integer, is_int, is_number, number
from transferlab.data.augment import Augment
from transferlab.data.bad_images import resolve_verify
from transferlab.data.datasets import check_loader_settings
from transferlab.data.feature_cache import check_cache_features
from transferlab.data.stratified import check_split_settings
from transferlab.data.transforms import check_resize
from transferlab.training.finetuning import Strategy
from transferlab.training.mixing import Mixing
from transferlab.training.param_groups import check_lr

log = logging.getLogger(__name__)


def validate(cfg: DictConfig) -> Strategy:
    """Raises ValueError naming the first key whose value is of the wrong type, out of range, or at odds with another
    key; returns the run's strategy. Nothing slow: the backbone is outlined on the meta device."""
    check_values(cfg)
    check_backbone_name(cfg.model.backbone)
    preprocessing = preprocessing_for(cfg.model.backbone, cfg.data)  # an image size the model cannot take fails
    strategy = Strategy(**cfg.strategy)
    # Stage names and layer counts against the backbone's own (built on the meta device: no memory, no init).
    outline = outline_backbone(
        cfg.model.backbone,
        image_size=preprocessing.image_size,
        classifier_hidden=cfg.model.get("classifier_hidden", True),
    )
    strategy.check_backbone(outline)
    _check_weights(cfg, strategy)
    check_cache_features(
        cache_features=cfg.data.get("cache_features", False),
        strategy=strategy.name,
        augment=Augment.from_config(cfg.augment),
    )
    if Mixing(**cfg.mixing).enabled and cfg.data.get("cache_features", False):
        raise ValueError("mixing.* mixes images, but data.cache_features=true trains on cached features: turn one off")
    max_epochs = cfg.trainer.get("max_epochs")
    if strategy.freeze_epochs and max_epochs is not None and 0 < max_epochs <= strategy.freeze_epochs:
        raise ValueError(
            f"strategy.freeze_epochs={strategy.freeze_epochs} >= trainer.max_epochs={max_epochs}: the backbone "
            "would never unfreeze; lower freeze_epochs or use strategy=feature_extraction"
        )
    return strategy


def check_values(cfg: DictConfig) -> None:
    """Each key's own value, one group at a time."""
    integer("seed", cfg.seed)
    _check_optimizer(cfg)
    _check_data(cfg)
    Head(**cfg.model.head)
    _check_model_speed(cfg)
    _check_loss(cfg)
    Augment.from_config(cfg.augment)
    _check_trainer(cfg)
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is not None and not isinstance(ckpt_path, str):
        raise ValueError(f"ckpt_path={ckpt_path!r} must be a checkpoint file, auto, or null")


def _check_optimizer(cfg: DictConfig) -> None:
    check_lr(cfg.optimizer.get("lr"))
    # torch's optimizers check these too, in their own words and only when the optimizer is built, after the data.
    if cfg.optimizer.get("weight_decay") is not None:
        number("optimizer.weight_decay", cfg.optimizer.weight_decay, low=0)
    if cfg.optimizer.get("momentum") is not None:
        number("optimizer.momentum", cfg.optimizer.momentum, low=0, high=1, high_open=True)


def _check_data(cfg: DictConfig) -> None:
    data = cfg.data
    check_resize(image_size=data.image_size, resize_ratio=data.resize_ratio)
    check_loader_settings(batch_size=data.batch_size, num_workers=data.num_workers)
    check_split_settings(val_fraction=data.val_fraction, test_fraction=data.test_fraction, seed=data.split_seed)
    resolve_verify(data.bad_images, data.verify)
    if data.get("folds") is not None and data.splits_file is not None:
        raise ValueError(
            f"data.folds={data.folds} draws the validation split, but data.splits_file={data.splits_file} "
            "fixes it: set one of them to null"
        )
    boolean("data.balanced_sampler", data.balanced_sampler)


def _check_model_speed(cfg: DictConfig) -> None:
    if cfg.model.get("compile") not in (None, True, False):
        raise ValueError(f"model.compile={cfg.model.compile!r} must be true or false")
    if cfg.model.get("channels_last", "auto") not in ("auto", True, False):
        raise ValueError(f"model.channels_last={cfg.model.channels_last!r} must be auto, true or false")


def _check_loss(cfg: DictConfig) -> None:
    number("loss.label_smoothing", cfg.loss.label_smoothing, low=0, high=1, high_open=True)
    weights = cfg.loss.class_weights
    if weights is None or weights == "balanced":
        return
    values = OmegaConf.to_container(weights) if OmegaConf.is_list(weights) else weights
    if not isinstance(values, list) or not all(is_number(w) and w > 0 for w in values):
        raise ValueError(
            f"loss.class_weights={weights!r} must be null, balanced, or a list of positive numbers (one per class)"
        )


def _check_trainer(cfg: DictConfig) -> None:
    max_epochs = cfg.trainer.get("max_epochs")
    if max_epochs is not None and (not is_int(max_epochs) or not (max_epochs >= 1 or max_epochs == -1)):
        raise ValueError(f"trainer.max_epochs={max_epochs!r} must be a positive integer (or -1: no limit)")
    if cfg.trainer.get("fast_dev_run"):
        raise ValueError(
            f"trainer.fast_dev_run={cfg.trainer.fast_dev_run} saves no checkpoint, and a run tests its best checkpoint "
            "and writes metrics.json and plots from it: for a quick check use trainer.max_epochs=1 "
            "+trainer.limit_train_batches=2 +trainer.limit_val_batches=2 +trainer.limit_test_batches=2"
        )
    boolean("ema.enabled", cfg.ema.enabled)
    number("ema.decay", cfg.ema.decay, low=0, high=1, high_open=True, hint="e.g. 0.999: about 1000 steps averaged")


def _check_weights(cfg: DictConfig, strategy: Strategy) -> None:
    weights = cfg.model.weights
    if strategy.name == "scratch" and cfg.model.get("pretrained") is not None:
        log.info("strategy=scratch starts from random weights: model.pretrained=%s is not used", cfg.model.pretrained)
    if strategy.name == "scratch" and weights is not None:
        raise ValueError(
            f"strategy=scratch trains from random weights, but model.weights={weights}; "
            "use strategy=finetune strategy.backbone_lr_scale=1 to train everything from pretrained weights"
        )
    if strategy.name != "scratch" and weights is None:
        raise ValueError(f"strategy={strategy.name} needs pretrained weights: set model.weights (imagenet or a file)")
