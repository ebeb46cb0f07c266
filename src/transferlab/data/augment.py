"""Owns :class:`Augment`, the ``augment`` config group as a typed value, and the rules of its keys. Imports nothing
heavy, so that ``launch.schemas`` can register it as the group's schema before a config is composed (``--help`` stays
fast); the transforms it describes are built in ``transforms.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from transferlab.checks import is_number, number


@dataclass(frozen=True)
class Augment:
    """The ``augment`` config group: how training images are augmented (the presets are ``conf/augment/*.yaml``).

    Registered as the group's schema (``launch.schemas``), so a wrong type fails when the config is composed.
    Checkpoints keep it as the plain dict of :meth:`to_dict` (test-time augmentation asks it for rot90).

    Attributes:
        random_crop_scale: (min, max) fraction of the image area a ``RandomResizedCrop`` keeps; None: crop as eval.
        hflip: probability of a horizontal flip.
        rot90: probability of a rotation by a random multiple of 90° (see :func:`build_train_transform`).
        color_jitter: strength of brightness, contrast and saturation jitter; 0 turns it off.
    """

    random_crop_scale: tuple[float, float] | None = None
    hflip: float = 0.0
    rot90: float = 0.0
    color_jitter: float = 0.0

    def __post_init__(self) -> None:
        check_augment(
            hflip=self.hflip, rot90=self.rot90, color_jitter=self.color_jitter, random_crop_scale=self.random_crop_scale
        )
        if self.random_crop_scale is not None:
            object.__setattr__(self, "random_crop_scale", crop_scale(self.random_crop_scale))
        for key in ("hflip", "rot90", "color_jitter"):
            object.__setattr__(self, key, float(getattr(self, key)))

    @classmethod
    def from_config(cls, values: Mapping[str, Any] | None) -> Augment:
        """From the ``augment`` config (a dict or DictConfig) or a checkpoint's ``augment`` hparam; None: none."""
        return cls(**dict(values or {}))

    def random_settings(self) -> dict[str, Any]:
        """The keys that make the train transform draw random numbers, with their values (empty for augment=none,
        whose train transform is the deterministic eval preprocessing)."""
        off = Augment()
        return {key: value for key, value in self.to_dict().items() if value != getattr(off, key)}

    @property
    def is_random(self) -> bool:
        return bool(self.random_settings())

    def transform_arguments(self) -> dict[str, Any]:
        """The keyword arguments of :func:`build_train_transform` that this augmentation sets."""
        return {key: getattr(self, key) for key in ("random_crop_scale", "hflip", "rot90", "color_jitter")}

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        if self.random_crop_scale is not None:
            values["random_crop_scale"] = list(self.random_crop_scale)  # as the config writes it
        return values


def check_augment(
    *, hflip: float = 0.0, rot90: float = 0.0, color_jitter: float = 0.0, random_crop_scale: Any = None
) -> None:
    """The rules of the ``augment`` keys (config validation calls this too); ValueError naming the key."""
    number("augment.hflip", hflip, low=0, high=1, hint="a probability")
    number("augment.rot90", rot90, low=0, high=1, hint="a probability")
    number("augment.color_jitter", color_jitter, low=0, hint="0 disables it")
    if random_crop_scale is not None:
        crop_scale(random_crop_scale)


def crop_scale(scale: Sequence[float]) -> tuple[float, float]:
    values = list(scale) if isinstance(scale, Sequence) and not isinstance(scale, str) else [scale]
    if len(values) != 2 or not all(is_number(v) for v in values) or not 0 < values[0] <= values[1] <= 1:
        raise ValueError(
            f"augment.random_crop_scale={values} must be [min, max] with 0 < min <= max <= 1 (fractions of the "
            "image area), or null for no random crop"
        )
    return float(values[0]), float(values[1])
