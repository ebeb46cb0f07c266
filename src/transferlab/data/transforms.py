"""Albumentations pipelines: the eval preset and the train preset built from the `augment` config group, and the
normalisation that follows them on the training device.

Both presets take an HxWx3 uint8 RGB array (`transform(image=array)["image"]`) and give a uint8 CHW tensor:
loader workers hand batches to the training process (and it to the GPU) at a quarter of float32's size, and
`normalize_images` turns a batch into the network's normalised float32 input where it is used (as timm's
PrefetchLoader, FFCV and DALI do). The presets themselves (none, light, strong) live only in
`conf/augment/*.yaml`; this module just turns their keys into transforms.
"""

from __future__ import annotations

from collections.abc import Sequence

import albumentations as A
import cv2
import torch
from albumentations.pytorch import ToTensorV2

from transferlab.checks import integer, number
from transferlab.data.augment import check_augment, crop_scale

# The names torchvision's and timm's weight metadata use, as OpenCV flags.
INTERPOLATIONS = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC, "nearest": cv2.INTER_NEAREST}


def build_eval_transform(*, image_size: int, resize_ratio: float = 0.875, interpolation: str = "bilinear") -> A.Compose:
    """Resize the shorter side to `image_size / resize_ratio`, centre crop `image_size`, uint8 CHW tensor.

    `interpolation` (`bilinear` or `bicubic`, as the weights' metadata names it) is used when enlarging; shrinking
    always averages areas (anti-aliased)."""
    return A.Compose([*_resize_centre_crop(image_size, resize_ratio, interpolation), ToTensorV2()])


def normalize_images(
    images: torch.Tensor, mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor
) -> torch.Tensor:
    """A uint8 (N)CHW image batch as float32 normalised with per-channel `mean` and `std` in 0..1 units (as
    torchvision weights publish them), on the batch's device and in its memory format.

    Pass `mean` and `std` as tensors already on that device in a training loop: building them from Python numbers
    is a host-to-device copy that makes the host wait for the GPU at every step.
    """
    if images.dtype != torch.uint8:
        raise TypeError(f"normalize_images expects uint8 images (what the transforms give), got {images.dtype}")
    mean_255 = torch.as_tensor(mean, dtype=torch.float32, device=images.device).view(3, 1, 1) * 255
    std_255 = torch.as_tensor(std, dtype=torch.float32, device=images.device).view(3, 1, 1) * 255
    return (images.float() - mean_255) / std_255


def build_train_transform(
    *,
    image_size: int,
    random_crop_scale: Sequence[float] | None,
    hflip: float,
    rot90: float,
    color_jitter: float,
    resize_ratio: float = 0.875,
    interpolation: str = "bilinear",
) -> A.Compose:
    """Random (or eval-style) crop to `image_size`, optional flips/rotations/colour jitter, uint8 CHW tensor.

    Args:
        image_size: side of the square output.
        random_crop_scale: (min, max) fraction of the image area kept by `RandomResizedCrop`; None
            crops like eval (shorter side to `image_size / resize_ratio`, centre crop).
        hflip: probability of a horizontal flip.
        rot90: probability of rotating by a random multiple of 90 degrees; that multiple may be 0, so
            the image actually turns with probability `0.75 * rot90`.
        color_jitter: strength of brightness, contrast and saturation jitter (hue gets a quarter of it,
            at most 0.1), applied to 80% of images; 0 disables it.
        resize_ratio: crop fraction of the eval-style crop used when `random_crop_scale` is None.
    """
    check_augment(hflip=hflip, rot90=rot90, color_jitter=color_jitter, random_crop_scale=random_crop_scale)

    if random_crop_scale is None:
        steps: list[A.BasicTransform] = _resize_centre_crop(image_size, resize_ratio, interpolation)
    else:
        steps = [
            A.RandomResizedCrop(
                size=(image_size, image_size),
                scale=crop_scale(random_crop_scale),
                interpolation=_cv2_interpolation(interpolation),
            )
        ]
    if hflip > 0:
        steps.append(A.HorizontalFlip(p=hflip))
    if rot90 > 0:
        steps.append(A.RandomRotate90(p=rot90))
    if color_jitter > 0:
        # Hue shifts recolour the whole image, so they get less than the others (as in SimCLR's recipe).
        steps.append(
            A.ColorJitter(
                brightness=color_jitter,
                contrast=color_jitter,
                saturation=color_jitter,
                hue=min(0.1, color_jitter / 4),
                p=0.8,
            )
        )
    return A.Compose([*steps, ToTensorV2()])


def _cv2_interpolation(name: str) -> int:
    if name not in INTERPOLATIONS:
        raise ValueError(f"interpolation={name!r} must be one of {', '.join(INTERPOLATIONS)}")
    return INTERPOLATIONS[name]


def _resize_centre_crop(
    image_size: int, resize_ratio: float, interpolation: str = "bilinear"
) -> list[A.BasicTransform]:
    check_resize(image_size=image_size, resize_ratio=resize_ratio)
    return [
        # INTER_AREA when shrinking: plain bilinear aliases badly on large photos (torchvision antialiases).
        A.SmallestMaxSize(
            max_size=round(image_size / resize_ratio),
            interpolation=_cv2_interpolation(interpolation),
            area_for_downscale="image",
        ),
        A.CenterCrop(height=image_size, width=image_size),
    ]


def check_resize(*, image_size: int | None = None, resize_ratio: float | None = None) -> None:
    """The rules of ``data.image_size`` and ``data.resize_ratio`` (None: not checked, the weights' own)."""
    if image_size is not None:
        integer("data.image_size", image_size, low=1, hint="pixels, or null for the model's own size")
    if resize_ratio is not None:
        number("data.resize_ratio", resize_ratio, low=0, high=1, low_open=True, hint="the centre crop's fraction")
