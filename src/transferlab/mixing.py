"""Batch mixing for training: torchvision's v2 MixUp and CutMix, built from the ``mixing`` config.

They act on whole batches (pairs of images and their one-hot labels are blended), so they run in the training
step rather than in the per-image albumentations pipeline; the loss takes the soft targets they return.
"""

from __future__ import annotations

from torchvision.transforms import v2


def build_batch_mixing(num_classes: int, *, mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0) -> v2.Transform | None:
    """MixUp when ``mixup_alpha > 0``, CutMix when ``cutmix_alpha > 0``, one of the two per batch when both
    (as torchvision's classification reference does); None when neither.

    The alphas parameterise Beta(α, α), from which each batch's mixing ratio is drawn; 0.2 (MixUp) and 1.0 (CutMix)
    are the usual values.
    """
    for key, alpha in (("mixup_alpha", mixup_alpha), ("cutmix_alpha", cutmix_alpha)):
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or alpha < 0:
            raise ValueError(f"mixing.{key}={alpha!r} must be a number >= 0 (0 turns it off)")
    transforms = []
    if mixup_alpha > 0:
        transforms.append(v2.MixUp(alpha=float(mixup_alpha), num_classes=num_classes))
    if cutmix_alpha > 0:
        transforms.append(v2.CutMix(alpha=float(cutmix_alpha), num_classes=num_classes))
    if not transforms:
        return None
    return transforms[0] if len(transforms) == 1 else v2.RandomChoice(transforms)
