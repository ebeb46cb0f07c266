"""Checks of the composed config's values and types, so that a mistake fails before anything slow, naming its key.

Hydra already refuses unknown group options (``optimizer=adam`` lists the choices) and unknown keys; OmegaConf
cannot type-check the ``_target_`` configs, whose keys are a constructor's arguments. These checks cover what
would otherwise surface as a traceback from deep inside torch, Lightning or albumentations. Checks that need
other modules (backbone names, strategies) live with those modules and are called from ``run.validate``.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

from omegaconf import DictConfig, OmegaConf

from transferlab.bad_images import resolve_verify


def check_config(cfg: DictConfig) -> None:
    """Raises ValueError naming the first key whose value is of the wrong type or out of range."""
    _integer(cfg, "seed")
    _check_optimizer(cfg)
    _check_data(cfg)
    _check_model(cfg)
    _check_loss(cfg)
    _check_augment(cfg)
    max_epochs = cfg.trainer.get("max_epochs")
    if max_epochs is not None and (not _is_int(max_epochs) or not (max_epochs >= 1 or max_epochs == -1)):
        raise ValueError(f"trainer.max_epochs={max_epochs!r} must be a positive integer (or -1: no limit)")
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is not None and not isinstance(ckpt_path, str):
        raise ValueError(f"ckpt_path={ckpt_path!r} must be a checkpoint file, auto, or null")


def _check_optimizer(cfg: DictConfig) -> None:
    optimizer = cfg.optimizer
    lr = optimizer.get("lr")
    if lr is None:
        raise ValueError("optimizer.lr is missing: set the head's learning rate, e.g. optimizer.lr=0.01")
    _number(cfg, "optimizer.lr", low=0, low_open=True)
    if optimizer.get("weight_decay") is not None:
        _number(cfg, "optimizer.weight_decay", low=0)
    if optimizer.get("momentum") is not None:
        _number(cfg, "optimizer.momentum", low=0, high=1, high_open=True)


def _check_data(cfg: DictConfig) -> None:
    if cfg.data.image_size is not None:
        _integer(cfg, "data.image_size", low=1, hint="or null for the model's own size")
    _integer(cfg, "data.batch_size", low=1)
    if cfg.data.num_workers != "auto":
        _integer(cfg, "data.num_workers", low=0, hint="or auto")
    _number(cfg, "data.val_fraction", low=0, high=1, high_open=True)
    _number(cfg, "data.test_fraction", low=0, high=1, high_open=True)
    _integer(cfg, "data.split_seed", low=0)
    if cfg.data.resize_ratio is not None:
        _number(cfg, "data.resize_ratio", low=0, high=1, low_open=True)
    resolve_verify(cfg.data.bad_images, cfg.data.verify)
    if cfg.data.val_fraction + cfg.data.test_fraction >= 1:
        raise ValueError(
            f"data.val_fraction={cfg.data.val_fraction} + data.test_fraction={cfg.data.test_fraction} must be below 1 "
            "so that training images remain"
        )
    if cfg.data.get("folds") is not None and cfg.data.splits_file is not None:
        raise ValueError(
            f"data.folds={cfg.data.folds} draws the validation split, but data.splits_file={cfg.data.splits_file} "
            "fixes it: set one of them to null"
        )
    if not isinstance(cfg.data.balanced_sampler, bool):
        raise ValueError(f"data.balanced_sampler={cfg.data.balanced_sampler!r} must be true or false")


def _check_model(cfg: DictConfig) -> None:
    if cfg.model.head.hidden_dim is not None:
        _integer(cfg, "model.head.hidden_dim", low=1, hint="or null")
    _number(cfg, "model.head.dropout", low=0, high=1, high_open=True)


def _check_loss(cfg: DictConfig) -> None:
    _number(cfg, "loss.label_smoothing", low=0, high=1, high_open=True)
    weights = cfg.loss.class_weights
    if weights is None or weights == "balanced":
        return
    values = OmegaConf.to_container(weights) if OmegaConf.is_list(weights) else weights
    if not isinstance(values, list) or not all(_is_number(w) and w > 0 for w in values):
        raise ValueError(
            f"loss.class_weights={weights!r} must be null, balanced, or a list of positive numbers (one per class)"
        )


def _check_augment(cfg: DictConfig) -> None:
    for key in ("hflip", "rot90"):
        _number(cfg, f"augment.{key}", low=0, high=1)
    _number(cfg, "augment.color_jitter", low=0)
    scale = cfg.augment.random_crop_scale
    if scale is not None:
        values = OmegaConf.to_container(scale) if OmegaConf.is_list(scale) else scale
        if not (
            isinstance(values, list)
            and len(values) == 2
            and all(_is_number(v) for v in values)
            and 0 < values[0] <= values[1] <= 1
        ):
            raise ValueError(
                f"augment.random_crop_scale={scale!r} must be [low, high] with 0 < low <= high <= 1, or null"
            )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _integer(cfg: DictConfig, key: str, *, low: int | None = None, hint: str = "") -> None:
    value = OmegaConf.select(cfg, key)
    if not _is_int(value) or (low is not None and value < low):
        bound = "an integer" if low is None else f"an integer >= {low}"
        raise ValueError(f"{key}={value!r} must be {bound}{f' ({hint})' if hint else ''}")


def _number(
    cfg: DictConfig,
    key: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    value = OmegaConf.select(cfg, key)
    ok = _is_number(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        low_text = "" if low is None else f"{'(' if low_open else '['}{low}, "
        high_text = "" if high is None else f"{high}{')' if high_open else ']'}"
        where = f"in {low_text}{high_text}" if low is not None and high is not None else ""
        if not where:
            where = f"{'>' if low_open else '>='} {low}" if low is not None else f"{'<' if high_open else '<='} {high}"
        raise ValueError(f"{key}={value!r} must be a number {where}")
