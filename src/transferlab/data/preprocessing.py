"""Owns :class:`Preprocessing`: what must be done to an image file before the network sees it (the decode size,
the resize and centre crop, and the normalisation), as the model's weights ask for it and a checkpoint carries it.

In the manner of torchvision's ``Weights.transforms()`` and timm's ``resolve_data_config``: one frozen value, from
which the eval transform and the decode size are derived wherever an image is prepared (the validation and test
loaders, eval, predict, the ``Predictor``, the linear probe, export's parity check), so that they cannot drift apart.
Checkpoints store it as the plain dict of :meth:`Preprocessing.to_dict` (``weights_only`` loading needs plain
data); :meth:`Preprocessing.from_dict` reads that back, from older checkpoints too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import albumentations as A

from transferlab.data.augment import Augment
from transferlab.data.transforms import (
    INTERPOLATIONS,
    build_eval_transform,
    build_train_transform,
    check_resize,
)

DEFAULT_RESIZE_RATIO = 0.875  # ImageNet's usual 224/256


@dataclass(frozen=True)
class Preprocessing:
    """An image's way into the network.

    Attributes:
        image_size: side of the square crop the network sees.
        mean, std: per-channel normalisation in 0..1 units (as torchvision and timm weights publish them).
        resize_ratio: eval resizes the shorter side to ``image_size / resize_ratio``, then centre-crops.
        interpolation: ``bilinear``, ``bicubic`` or ``nearest`` (used when enlarging; shrinking averages areas).
    """

    image_size: int
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    resize_ratio: float = DEFAULT_RESIZE_RATIO
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        check_resize(image_size=self.image_size, resize_ratio=self.resize_ratio)
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation={self.interpolation!r} must be one of {', '.join(INTERPOLATIONS)}")
        for name in ("mean", "std"):
            values = tuple(float(v) for v in getattr(self, name))
            if len(values) != 3:
                raise ValueError(f"preprocessing {name}={list(values)} must have one value per RGB channel")
            object.__setattr__(self, name, values)

    def eval_transform(self) -> A.Compose:
        """Resize, centre crop, uint8 CHW tensor: what validation, test, eval and predict apply."""
        return build_eval_transform(
            image_size=self.image_size, resize_ratio=self.resize_ratio, interpolation=self.interpolation
        )

    def train_transform(self, augment: Augment) -> A.Compose:
        """The training transform of ``augment`` at this size (eval-style crop when it has no random crop)."""
        return build_train_transform(
            image_size=self.image_size,
            resize_ratio=self.resize_ratio,
            interpolation=self.interpolation,
            **augment.transform_arguments(),
        )

    def decode_side(self, augment: Augment | None = None) -> int:
        """The shorter side an image needs for its transform (eval's, or ``augment``'s) to never upsample; larger
        JPEGs decode at reduced size (see ``images.read_rgb``).

        Eval resizes the shorter side to ``image_size / resize_ratio``. A random resized crop of area fraction ``s``
        and aspect ratio up to 4/3 has a shorter side of at least ``sqrt(3/4 × s)`` times the image's.
        """
        if augment is None or augment.random_crop_scale is None:
            return math.ceil(self.image_size / self.resize_ratio)
        return math.ceil(self.image_size / math.sqrt(0.75 * augment.random_crop_scale[0]))

    def with_normalization(self, mean: Any, std: Any) -> Preprocessing:
        return replace(self, mean=tuple(mean), std=tuple(std))

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as checkpoints carry it (``model.hparams.preprocessing``) and ``model.json`` shows it."""
        return {
            "image_size": self.image_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "resize_ratio": self.resize_ratio,
            "interpolation": self.interpolation,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Preprocessing:
        """The inverse of :meth:`to_dict`; a checkpoint written before ``interpolation`` was kept reads as bilinear."""
        return cls(
            image_size=int(values["image_size"]),
            mean=tuple(values["mean"]),
            std=tuple(values["std"]),
            resize_ratio=float(values.get("resize_ratio") or DEFAULT_RESIZE_RATIO),
            interpolation=values.get("interpolation", "bilinear"),
        )
