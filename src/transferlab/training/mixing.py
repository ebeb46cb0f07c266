"""Batch mixing for training: :class:`Mixing`, the ``mixing`` config as a typed value, and torchvision's v2 MixUp
and CutMix built from it.

They act on whole batches (pairs of images and their one-hot labels are blended), so they run in the training
step rather than in the per-image albumentations pipeline; the loss takes the soft targets they return. torchvision
is imported only when a mixing transform is built, so that ``launch.schemas`` can register :class:`Mixing` before a
config is composed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torchvision.transforms import v2


@dataclass(frozen=True)
class Mixing:
    """``mixup_alpha > 0`` turns MixUp on, ``cutmix_alpha > 0`` CutMix; with both, each batch gets one of the two.

    The alphas parameterise Beta(α, α), from which each batch's mixing ratio is drawn; 0.2 (MixUp) and 1.0 (CutMix)
    are the usual values.
    """

    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0

    def __post_init__(self) -> None:
        for key in ("mixup_alpha", "cutmix_alpha"):
            alpha = getattr(self, key)
            if isinstance(alpha, bool) or not isinstance(alpha, int | float) or alpha < 0:
                raise ValueError(f"mixing.{key}={alpha!r} must be a number >= 0 (0 turns it off)")
            object.__setattr__(self, key, float(alpha))

    @property
    def enabled(self) -> bool:
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0


def build_batch_mixing(num_classes: int, *, mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0) -> v2.Transform | None:
    """MixUp, CutMix, or one of the two per batch when both (as torchvision's classification reference does), as
    :class:`Mixing` describes them; None when neither."""
    mixing = Mixing(mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha)
    if not mixing.enabled:
        return None
    from torchvision.transforms import v2

    transforms = []
    if mixing.mixup_alpha > 0:
        transforms.append(v2.MixUp(alpha=mixing.mixup_alpha, num_classes=num_classes))
    if mixing.cutmix_alpha > 0:
        transforms.append(v2.CutMix(alpha=mixing.cutmix_alpha, num_classes=num_classes))
    return transforms[0] if len(transforms) == 1 else v2.RandomChoice(transforms)
