"""Owns the images of each split as a torch ``Dataset`` and ``DataLoader``: which transform, decode size and
augmentation seeding the images of train, val and test get, and the settings of the loaders that batch them.

``datamodule.py`` decides which files go to which split and loader; decoding is ``images.py``'s, the transforms are
``transforms.py``'s. A file that cannot be read here meets ``data.bad_images`` (see ``bad_images.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import albumentations as A
import torch
from torch.utils.data import Dataset, WeightedRandomSampler

from transferlab.checks import integer
from transferlab.data.augment import Augment
from transferlab.data.bad_images import SkippingDataLoader, Unreadable
from transferlab.data.images import read_rgb, set_max_image_pixels
from transferlab.data.preprocessing import Preprocessing
from transferlab.data.samples import SPLITS, SampleTable
from transferlab.devices import resolve_num_workers


class ImageFileDataset(Dataset):
    """(image tensor, class index) pairs read from files under ``root``."""

    def __init__(
        self,
        root: Path,
        samples: SampleTable,
        transform: A.Compose,
        *,
        random: bool = False,
        bad_images: str = "error",
        decode_side: int | None = None,
        max_image_pixels: int | None = None,
    ) -> None:
        self.root = root
        self.max_image_pixels = max_image_pixels
        self.paths: list[str] = samples.paths.tolist()
        self.labels: list[int] = samples.labels.tolist()
        self.transform = transform
        self.random = random
        self.bad_images = bad_images
        self.decode_side = decode_side

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | Unreadable:
        path = self.paths[index]
        set_max_image_pixels(self.max_image_pixels)  # per call: a spawned worker starts from Pillow's default
        try:
            image = read_rgb(self.root / path, min_side=self.decode_side)
        except (ValueError, FileNotFoundError) as error:  # deleted or damaged since the scan
            if self.bad_images == "skip":
                if isinstance(error, FileNotFoundError):
                    return Unreadable(path, "file no longer exists")
                return Unreadable(path, str(error).removeprefix(f"cannot read image {self.root / path}: "))
            raise ValueError(
                f"{error} (found while loading a batch). Fix or remove the file, or set data.bad_images=skip "
                "to leave unreadable files out of training."
            ) from None
        if self.random:
            # albumentations' Compose keeps a generator of its own: seed_everything does not reach it and every
            # forked worker would hold the same copy. Seeding it per sample from torch's stream (which the
            # DataLoader seeds per worker, and checkpoints carry) makes augmentation reproducible and resumable.
            self.transform.set_random_seed(int(torch.randint(2**31 - 1, ()).item()))
        return self.transform(image=image)["image"], self.labels[index]


def split_datasets(
    root: Path,
    samples: SampleTable,
    *,
    preprocessing: Preprocessing,
    augment: Augment,
    cache_features: bool,
    bad_images: str,
    max_image_pixels: int | None,
) -> dict[str, ImageFileDataset]:
    """One dataset per split of `samples`: train with the ``augment`` transform, val and test with the eval one.

    With `cache_features`, every split is read once, as eval (see ``feature_cache.py``).
    """
    # Both give uint8 tensors; the model normalises batches with its mean/std on its device (see transforms.py).
    eval_transform = preprocessing.eval_transform()
    train_transform = preprocessing.train_transform(augment)
    eval_side = preprocessing.decode_side()
    train_side = preprocessing.decode_side(augment)
    # Seeding albumentations per sample only where it draws random numbers (see ImageFileDataset): augment=none
    # then leaves torch's random stream alone, so a cached run shuffles exactly as an uncached one does.
    random = augment.is_random
    datasets = {}
    for split in SPLITS:
        train = split == "train" and not cache_features  # cached: every split is read once, as eval
        datasets[split] = ImageFileDataset(
            root,
            samples.part(split),
            train_transform if train else eval_transform,
            random=train and random,
            bad_images=bad_images,
            decode_side=train_side if train else eval_side,
            max_image_pixels=max_image_pixels,
        )
    return datasets


def check_loader_settings(*, batch_size: int, num_workers: int | str) -> int:
    """The rules of ``data.batch_size`` and ``data.num_workers`` (config validation calls this too); returns the
    number of loader workers, ``auto`` resolved."""
    integer("data.batch_size", batch_size, low=1)
    return resolve_num_workers(num_workers, "data.num_workers")


def image_loader(
    dataset: ImageFileDataset,
    on_unreadable: Callable[[list[Unreadable]], None],
    *,
    batch_size: int,
    num_workers: int,
    **options: Any,
) -> SkippingDataLoader:
    """Batches of `dataset` (memory pinned when CUDA is there); its unreadable files go to `on_unreadable`.

    `options`: further ``DataLoader`` arguments (shuffle, sampler, drop_last, ...).
    """
    return SkippingDataLoader(
        dataset,
        on_unreadable=on_unreadable,
        batch_size=batch_size,
        num_workers=num_workers,
        pin_memory=torch.cuda.is_available(),
        **options,
    )


def class_balanced_sampler(dataset: ImageFileDataset, counts: Sequence[int]) -> WeightedRandomSampler:
    """Draws the images of `dataset` with probability inverse to their class's frequency (`counts`, per class)."""
    weights = [1.0 / counts[label] for label in dataset.labels]
    return WeightedRandomSampler(weights, num_samples=len(weights), replacement=True)
