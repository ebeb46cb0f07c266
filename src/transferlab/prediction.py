"""Owns running a trained model on image files: the checkpoint's eval preprocessing, batches of readable images
(an unreadable file costs its own row, not the run), class probabilities, and test-time augmentation (TTA).

eval, predict, the end-of-run test predictions and plots, :class:`~transferlab.predictor.Predictor` and the linear
probe's feature extraction all go through here, so every one of them sees an image the way the network saw its
validation images.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import albumentations as A
import torch
from rich.progress import track
from torch.utils.data import DataLoader, Dataset

from transferlab.datasets import decode_side
from transferlab.devices import resolve_device, resolve_num_workers
from transferlab.images import read_rgb
from transferlab.module import ImageClassifier
from transferlab.trained_model import trained_with_rot90
from transferlab.transforms import eval_transform_of

log = logging.getLogger(__name__)

PLAIN = ("identity",)
FLIPS = ("identity", "hflip")
ROTATIONS = ("rot90", "rot180", "rot270")


def eval_decode_side(preprocessing: dict[str, Any]) -> int:
    """The shorter side an image file is decoded at for the eval preprocessing: the rule of the run's validation and
    test loaders (``datasets.decode_side``), so that eval, predict and the end-of-run predictions see exactly the
    pixels those loaders saw (a large JPEG is decoded at a reduced size, see ``images.read_rgb``)."""
    return decode_side(int(preprocessing["image_size"]), preprocessing["resize_ratio"], None)


def model_preprocessing(model: ImageClassifier) -> dict[str, Any]:
    """The preprocessing the checkpoint carries (image_size, mean, std, resize_ratio, interpolation)."""
    preprocessing = model.hparams.get("preprocessing")
    if not preprocessing:
        raise ValueError("the checkpoint carries no preprocessing (image_size, mean, std): retrain it with train.py")
    return preprocessing


def eval_transform(model: ImageClassifier) -> A.Compose:
    return eval_transform_of(model_preprocessing(model))


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


class ImagePaths(Dataset):
    """Image files as ``(tensor, index)``; a file that cannot be read gives a zero image and index ``-1 - index``.

    A negative index marks the failure so that one corrupt file among thousands costs its own row, not the run.
    """

    def __init__(self, paths: Sequence[Path], preprocessing: dict[str, Any]) -> None:
        self.paths = list(paths)
        self.transform = eval_transform_of(preprocessing)
        self.min_side = eval_decode_side(preprocessing)
        size = int(preprocessing["image_size"])
        self.blank = torch.zeros(3, size, size, dtype=torch.uint8)  # the transforms' dtype

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        try:
            image = read_rgb(self.paths[index], min_side=self.min_side)
        except (OSError, ValueError) as error:
            log.warning("Skipping %s: %s", self.paths[index], error)
            return self.blank, -1 - index
        return self.transform(image=image)["image"], index


def readable_batches(
    paths: Sequence[Path],
    preprocessing: dict[str, Any],
    *,
    batch_size: int,
    num_workers: int | str,
    device: torch.device,
    progress: bool = False,
) -> Iterator[tuple[torch.Tensor, list[int]]]:
    """Batches of the readable images among ``paths`` after the eval preprocessing (uint8 NCHW on ``device``, not yet
    normalised), each with the indices into ``paths`` of its images; unreadable files are logged and left out."""
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    dataset = ImagePaths(paths, preprocessing)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=resolve_num_workers(num_workers))
    batches = track(loader, description="Classifying", total=len(loader), disable=not progress, transient=True)
    for images, indices in batches:
        ok = indices >= 0
        if ok.any():
            yield images[ok].to(device), indices[ok].tolist()


@dataclass
class Predictions:
    """Class probabilities of the images that could be read, and the paths of those that could not."""

    paths: list[Path]  # the readable images, in input order
    probs: torch.Tensor  # (len(paths), num_classes), float32 on the CPU; averaged over views
    unreadable: list[Path]
    views: tuple[str, ...] = PLAIN  # what probs averages over: PLAIN, or tta_views(...)
    plain_probs: torch.Tensor | None = None  # without TTA (the first view alone) when views has more than one


@torch.inference_mode()
def predict_files(
    model: ImageClassifier,
    paths: Sequence[str | Path],
    *,
    batch_size: int = 64,
    num_workers: int | str = 0,
    device: str = "auto",
    progress: bool = False,
    views: Sequence[str] = PLAIN,
) -> Predictions:
    """Softmax probabilities for every image file, in batches, with the checkpoint's eval preprocessing.

    ``progress``: a progress bar over the batches (for folders of images). ``views``: ``PLAIN``, or
    :func:`tta_views` for test-time augmentation (``probs`` averages them, ``plain_probs`` keeps the plain view).
    """
    views = tuple(views)
    paths = [Path(p) for p in paths]
    target = resolve_device(device)
    model = model.to(target).eval()
    probs: list[torch.Tensor] = []
    plain: list[torch.Tensor] = []
    kept: list[int] = []
    batches = readable_batches(
        paths,
        model_preprocessing(model),
        batch_size=batch_size,
        num_workers=num_workers,
        device=target,
        progress=progress,
    )
    for images, indices in batches:
        averaged, first = batch_probs(model, images, views)
        probs.append(averaged.cpu())
        plain.append(first.cpu())
        kept.extend(indices)
    unreadable = sorted(set(range(len(paths))) - set(kept))
    num_classes = len(model.class_names)
    return Predictions(
        paths=[paths[i] for i in kept],
        probs=torch.cat(probs) if probs else torch.zeros(0, num_classes),
        unreadable=[paths[i] for i in unreadable],
        views=views,
        plain_probs=(torch.cat(plain) if plain else torch.zeros(0, num_classes)) if len(views) > 1 else None,
    )


def preprocessed_image(model: ImageClassifier, path: str | Path) -> torch.Tensor:
    """One image after the checkpoint's eval preprocessing (resize, centre crop), before normalisation: uint8 CHW,
    the picture the network is shown."""
    image = read_rgb(path, min_side=eval_decode_side(model_preprocessing(model)))
    return eval_transform(model)(image=image)["image"]


def network_input(model: ImageClassifier, path: str | Path) -> torch.Tensor:
    """One image as the network sees it: the checkpoint's eval preprocessing, normalised, CHW float32."""
    return model.normalize(preprocessed_image(model, path))
