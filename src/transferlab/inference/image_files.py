"""Owns running a trained model on image files: the checkpoint's eval preprocessing, batches of readable images
(an unreadable file costs its own row, not the run), and their class probabilities (test-time augmentation's
views from ``tta.py``).

eval, predict, the end-of-run test predictions and plots, :class:`~transferlab.inference.predictor.Predictor` and
the linear probe's feature extraction all go through here, so every one of them sees an image the way the network
saw its validation images.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.progress import track
from torch.utils.data import DataLoader, Dataset

from transferlab.data.images import read_rgb
from transferlab.data.preprocessing import Preprocessing
from transferlab.devices import resolve_device, resolve_num_workers
from transferlab.inference.tta import PLAIN, batch_probs
from transferlab.training.classifier import ImageClassifier

log = logging.getLogger(__name__)


def model_preprocessing(model: ImageClassifier) -> Preprocessing:
    """The preprocessing the checkpoint carries (image size, normalisation, resize ratio, interpolation)."""
    if model.preprocessing is None:
        raise ValueError("the checkpoint carries no preprocessing (image_size, mean, std): retrain it with train.py")
    return model.preprocessing


class ImagePaths(Dataset):
    """Image files as ``(tensor, index)``; a file that cannot be read gives a zero image and index ``-1 - index``.

    A negative index marks the failure so that one corrupt file among thousands costs its own row, not the run.
    """

    def __init__(self, paths: Sequence[Path], preprocessing: Preprocessing) -> None:
        self.paths = list(paths)
        self.transform = preprocessing.eval_transform()
        self.min_side = preprocessing.decode_side()
        size = preprocessing.image_size
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
    preprocessing: Preprocessing,
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
    preprocessing = model_preprocessing(model)
    image = read_rgb(path, min_side=preprocessing.decode_side())
    return preprocessing.eval_transform()(image=image)["image"]


def network_input(model: ImageClassifier, path: str | Path) -> torch.Tensor:
    """One image as the network sees it: the checkpoint's eval preprocessing, normalised, CHW float32."""
    return model.normalize(preprocessed_image(model, path))
