"""Owns test-time augmentation (TTA): which views of an eval crop are averaged (the crop, its horizontal flip, and
its rotations for a run trained with rot90), and the softmax probabilities of a batch over them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from transferlab.inference.trained_model import trained_with_rot90
from transferlab.training.classifier import ImageClassifier

PLAIN = ("identity",)
FLIPS = ("identity", "hflip")
ROTATIONS = ("rot90", "rot180", "rot270")


def check_tta(tta: Any) -> bool:
    if not isinstance(tta, bool):
        raise ValueError(f"tta={tta!r} must be true or false (test-time augmentation: average flipped/rotated views)")
    return tta


def tta_views(
    model: ImageClassifier, ckpt_path: str | Path | None = None, *, rot90: bool | None = None
) -> tuple[str, ...]:
    """The views TTA averages the softmax over: the eval crop and its horizontal flip, plus the crop turned by 90°,
    180° and 270° when the run trained with rot90 (``rot90=None``: see :func:`trained_with_rot90`)."""
    rot90 = trained_with_rot90(model, ckpt_path) if rot90 is None else rot90
    return FLIPS + (ROTATIONS if rot90 else ())


def _view(images: torch.Tensor, name: str) -> torch.Tensor:
    if name == "identity":
        return images
    if name == "hflip":
        return images.flip(-1)
    return images.rot90(int(name.removeprefix("rot")) // 90, dims=(-2, -1))  # counter-clockwise


def batch_probs(
    model: ImageClassifier, images: torch.Tensor, views: Sequence[str] = PLAIN
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax probabilities of a preprocessed batch (the eval transform's uint8 NCHW, on the model's device) averaged
    over ``views`` (``PLAIN``, or :func:`tta_views`), and those of the first view, the batch as it is.

    A flip or rotation of the uint8 crop equals that of the normalised crop: normalising is per pixel and channel.
    """
    probs = [model(_view(images, view)).float().softmax(dim=1) for view in views]
    return torch.stack(probs).mean(dim=0), probs[0]
