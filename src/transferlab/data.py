"""``FolderDataModule``: a folder of labelled images as train/val/test loaders, and the class list.

Scanning and splitting live in ``splits.py``, decoding in ``images.py``, augmentation in ``transforms.py``; this
module wires them into Lightning: which files go to which loader, with which transform and sampler.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np
import torch
from pytorch_lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from transferlab.bad_images import (
    SkippingDataLoader,
    Unreadable,
    bad_images_error,
    find_bad_images,
    resolve_verify,
    write_skipped_csv,
)
from transferlab.checks import integer
from transferlab.demo import make_demo_dataset
from transferlab.devices import resolve_num_workers
from transferlab.download import fetch_dataset
from transferlab.feature_cache import NO_AUGMENT, FeatureCache
from transferlab.images import read_rgb, set_max_image_pixels
from transferlab.layouts import dataset_root, read_labels, scan_folder
from transferlab.rundir import BAD_IMAGES_FILE
from transferlab.splits import SampleTable, load_or_make_splits
from transferlab.transforms import build_eval_transform, build_train_transform

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


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


def decode_side(image_size: int, resize_ratio: float, random_crop_scale: Sequence[float] | None) -> int:
    """The shorter side an image needs for its transform to never upsample; larger JPEGs decode at reduced size.

    Eval resizes the shorter side to ``image_size / resize_ratio``. A random resized crop of area fraction ``s``
    and aspect ratio up to 4/3 has a shorter side of at least ``sqrt(3/4 × s)`` times the image's.
    """
    if random_crop_scale is None:
        return math.ceil(image_size / resize_ratio)
    return math.ceil(image_size / math.sqrt(0.75 * random_crop_scale[0]))


def weights_arguments(preprocessing: dict[str, Any]) -> dict[str, Any]:
    """The `FolderDataModule` arguments that the model's weights decide (``backbones.preprocessing_for``): its
    input size (used when ``data.image_size`` is null and the demo is not used), resize ratio and interpolation.
    Their mean and std go to the model, which normalises (:meth:`FolderDataModule.preprocessing_with`)."""
    keys = ("resize_ratio", "interpolation")
    return {"default_image_size": preprocessing["image_size"], **{key: preprocessing[key] for key in keys}}


def check_loader_settings(*, batch_size: int, num_workers: int | str) -> int:
    """The rules of ``data.batch_size`` and ``data.num_workers`` (config validation calls this too); returns the
    number of loader workers, ``auto`` resolved."""
    integer("data.batch_size", batch_size, low=1)
    return resolve_num_workers(num_workers, "data.num_workers")


class FolderDataModule(LightningDataModule):
    """Images in ``root/<class>/*``, ``root/<split>/<class>/*`` (see ``layouts.py``), or listed in a label table.

    Args:
        root: the dataset folder; paths of a label table are relative to it. None: the label file's folder, or,
            without a label file, the demo dataset (``demo``).
        labels_file: a label table instead of class folders: a CSV file (``data.labels_file``) or a pandas DataFrame
            with columns ``path``, ``label`` and optionally ``split`` (see ``layouts.read_labels``).
        image_size: side of the square crops the network sees; None: the demo's ``train_image_size`` when the
            demo is used, else ``default_image_size``.
        default_image_size: the model's own input size (from its weights), used when ``image_size`` is None.
        batch_size: per process.
        num_workers: loader processes, or ``"auto"`` for one per core (at most 8).
        val_fraction, test_fraction, split_seed: how missing val/test splits are drawn from train (stratified).
        splits_file: a ``splits.csv`` to reuse instead of splitting.
        folds, fold: k-fold cross-validation: the non-test images in ``folds`` stratified folds, fold ``fold``
            validating (see ``splits.stratified_split``); None: one split by ``val_fraction``.
        balanced_sampler: draw training images with probability inverse to their class's frequency.
        augment: the ``augment`` config group (keyword arguments of ``build_train_transform``).
        resize_ratio: eval resizes the shorter side to ``image_size / resize_ratio`` before the centre crop.
        interpolation: ``bilinear`` or ``bicubic``, as the weights were trained (used when enlarging).
        demo: the demo dataset, used when neither ``root`` nor ``labels_file`` is given: ``root`` (where it is
            generated on first use), ``train_image_size`` (its ``image_size`` default) and the arguments of
            ``make_demo_dataset``.
        max_image_pixels: images with more pixels are refused as decompression bombs; None: Pillow's limit.
        download: arguments of ``fetch_dataset`` (``url``, ``sha256``, ``subdir``); when given, ``root`` is
            downloaded and extracted on first use and reused after.
        bad_images: ``skip`` or ``error``: what an unreadable image file does (see ``bad_images.py``).
        verify: ``auto``, ``none``, ``header`` or ``full``: how files are checked before training.
        skipped_file: where skipped files are listed (``skipped_images.csv`` in the run dir); None: only logged.
        cache_features: loaders yield the frozen backbone's features, extracted once per split by the model the
            Trainer fits (see ``feature_cache.py``); ``strategy=feature_extraction`` and ``augment=none`` only.
    """

    def __init__(
        self,
        root: str | None = None,
        *,
        labels_file: str | Any | None = None,
        image_size: int | None = None,
        default_image_size: int = 224,
        batch_size: int = 32,
        num_workers: int | str = "auto",
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        splits_file: str | None = None,
        folds: int | None = None,
        fold: int = 0,
        balanced_sampler: bool = False,
        augment: dict[str, Any] | None = None,
        resize_ratio: float | None = 0.875,
        interpolation: str = "bilinear",
        demo: dict[str, Any] | None = None,
        download: dict[str, Any] | None = None,
        bad_images: str = "skip",
        verify: str = "auto",
        skipped_file: str | None = None,
        cache_features: bool = False,
        max_image_pixels: int | None = None,
    ) -> None:
        super().__init__()
        set_max_image_pixels(max_image_pixels)  # checks the value; loader workers repeat it (ImageFileDataset)
        self.max_image_pixels = max_image_pixels
        self.verify = resolve_verify(bad_images, verify)
        self.bad_images = bad_images
        self.skipped_file = None if skipped_file is None else Path(skipped_file)
        self.skipped: dict[str, str] = {}  # path relative to root -> reason, found by the scan or by a loader
        num_workers = check_loader_settings(batch_size=batch_size, num_workers=num_workers)
        demo = dict(demo or {})
        demo_root, demo_size = demo.pop("root", None), demo.pop("train_image_size", None)
        self.root = dataset_root(root, labels_file=labels_file, demo_root=demo_root if demo else None)
        self.labels_file = labels_file
        # The demo is used only when no root and no label file is given: data.root=/my/images with the default
        # (demo) config trains on /my/images, at the model's size rather than the demo's.
        self.demo = demo if demo and root in (None, "") and labels_file is None else None
        if demo and self.demo is None:
            log.info("Training on %s: the demo dataset is used only when data.root is not set", self.root)
        self.image_size = image_size or (self.demo and demo_size) or default_image_size
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.splits_file = splits_file
        self.folds, self.fold = folds, fold
        self.balanced_sampler = balanced_sampler
        self.augment = dict(augment or {})
        self.resize_ratio = 0.875 if resize_ratio is None else resize_ratio  # None: ImageNet's usual 224/256
        self.interpolation = interpolation
        self.download = download
        self.found: SampleTable | None = None  # what the folders or label table hold, before the split
        self.samples: SampleTable | None = None
        self.datasets: dict[str, ImageFileDataset] = {}
        self.cache_features = cache_features
        self.feature_cache = FeatureCache()

    @property
    def class_names(self) -> list[str]:
        """The sorted class folder names; empty before `setup`."""
        return [] if self.samples is None else self.samples.class_names

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def preprocessing_with(self, mean: Sequence[float], std: Sequence[float]) -> dict[str, Any]:
        """What inference must do to an image: this data module's resize and crop, then the weights' normalisation
        (``mean``, ``std``: the model's, not used here, since batches leave the loaders as uint8). Travels inside
        checkpoints as the model's ``preprocessing``."""
        return {
            "image_size": self.image_size,
            "mean": list(mean),
            "std": list(std),
            "resize_ratio": self.resize_ratio,
            "interpolation": self.interpolation,
        }

    def prepare_data(self) -> None:
        if self.demo is not None:
            make_demo_dataset(self.root, **self.demo)
        if self.download is not None:
            fetch_dataset(root=self.root, **self.download)

    def setup(self, stage: str | None = None) -> None:
        if self.samples is not None:  # Lightning calls setup once per fit/test; the split never changes within a run
            return
        self.samples = load_or_make_splits(
            self.find_images(),
            self.root,
            val_fraction=self.val_fraction,
            test_fraction=self.test_fraction,
            seed=self.split_seed,
            splits_file=self.splits_file,
            exclude=self._find_bad_images,
            folds=self.folds,
            fold=self.fold,
            on_missing=self._on_missing,
        )
        if not len(self.samples.part("val")):
            raise ValueError(
                f"The validation split of {self.root} is empty: set data.val_fraction > 0 or add a val/ folder"
            )
        # Both give uint8 tensors; the model normalises batches with its mean/std on its device (see transforms.py).
        sizes = {"image_size": self.image_size, "resize_ratio": self.resize_ratio, "interpolation": self.interpolation}
        eval_transform = build_eval_transform(**sizes)
        train_transform = build_train_transform(**sizes, **self.augment)
        eval_side = decode_side(self.image_size, self.resize_ratio, None)
        train_side = decode_side(self.image_size, self.resize_ratio, self.augment.get("random_crop_scale"))
        # Seeding albumentations per sample only where it draws random numbers (see ImageFileDataset): augment=none
        # then leaves torch's random stream alone, so a cached run shuffles exactly as an uncached one does.
        random = any(self.augment.get(key, off) != off for key, off in NO_AUGMENT.items())
        for split in SPLITS:
            train = split == "train" and not self.cache_features  # cached: every split is read once, as eval
            self.datasets[split] = ImageFileDataset(
                self.root,
                self.samples.part(split),
                train_transform if train else eval_transform,
                random=train and random,
                bad_images=self.bad_images,
                decode_side=train_side if train else eval_side,
                max_image_pixels=self.max_image_pixels,
            )
        log.info(
            "%s: %d classes; %s",
            self.root,
            self.num_classes,
            ", ".join(f"{split} {len(self.datasets[split])}" for split in SPLITS),
        )

    def find_images(self) -> SampleTable:
        """The images the folders or the label table hold, with the splits they give, before the split is drawn.

        Files a label table lists that do not exist meet ``data.bad_images``: left out and listed, or an error.
        """
        if self.found is not None:
            return self.found
        self.prepare_data()  # idempotent; makes this usable before a Trainer exists (run.py needs the classes)
        if self.labels_file is None:
            self.found = scan_folder(self.root)
            return self.found
        table, missing = read_labels(self.labels_file, self.root)
        if missing and self.bad_images == "error":
            raise bad_images_error(self.root, missing, self._listing_file())
        self._record_skipped(missing)
        self.found = table.select(np.fromiter((p not in missing for p in table.paths), dtype=bool, count=len(table)))
        return self.found

    def _on_missing(self, missing: dict[str, str]) -> None:
        """Files of a saved split (resume, data.splits_file) deleted since: ``data.bad_images`` decides."""
        if self.bad_images == "error":
            raise bad_images_error(self.root, missing, self._listing_file())
        self._record_skipped(missing)

    def _listing_file(self) -> Path | None:
        """Where ``bad_images=error`` lists every bad file when there are too many for its message."""
        return None if self.skipped_file is None else self.skipped_file.with_name(BAD_IMAGES_FILE)

    def _find_bad_images(self, paths: list[str]) -> list[str]:
        """The paths to leave out of the split: unreadable files under ``bad_images=skip``; raises under ``error``."""
        if self.verify == "none":
            return []
        bad = find_bad_images(self.root, paths, full=self.verify == "full")
        if bad and self.bad_images == "error":
            raise bad_images_error(self.root, bad, self._listing_file())
        self._record_skipped(bad)
        return list(bad)

    def _record_skipped(self, found: dict[str, str]) -> None:
        new = {path: reason for path, reason in found.items() if path not in self.skipped}
        if not new:
            return
        self.skipped.update(new)
        for path, reason in new.items():
            log.warning("Skipping unreadable image %s: %s", self.root / path, reason)
        if self.skipped_file is not None:
            write_skipped_csv(self.skipped_file, new)
        log.warning(
            "%d unreadable image(s) left out so far%s",
            len(self.skipped),
            f"; listed in {self.skipped_file}" if self.skipped_file else "",
        )

    def _on_unreadable(self, bad: list[Unreadable]) -> None:
        self._record_skipped({item.path: item.reason for item in bad})

    def class_counts(self, split: str = "train") -> list[int]:
        return self.samples.part(split).class_counts()

    def _loader(self, split: str, *, shuffle: bool = False, sampler=None) -> DataLoader:
        dataset = self.datasets[split]
        if self.cache_features:
            return self._cached_loader(split, shuffle=shuffle, balanced=sampler is not None)
        return SkippingDataLoader(
            dataset,
            on_unreadable=self._on_unreadable,
            batch_size=self.batch_size,
            shuffle=shuffle,
            sampler=sampler,
            # A last training batch of one image makes BatchNorm fail in train mode (one value per channel), and
            # tiny last batches give noisy steps; the images dropped differ every epoch, since train reshuffles.
            drop_last=split == "train" and len(dataset) >= self.batch_size,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
        )

    def _image_loader(self, split: str) -> SkippingDataLoader:
        """Every image of ``split`` in order, with the eval preprocessing: what a feature cache reads once."""
        return SkippingDataLoader(
            self.datasets[split],
            on_unreadable=self._on_unreadable,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            # Its own generator: a loader draws a seed when iterated, and drawing it from torch's global stream
            # would shift every later shuffle away from the uncached run's.
            generator=torch.Generator(),
        )

    def _cached_loader(self, split: str, *, shuffle: bool = False, balanced: bool = False) -> DataLoader:
        module = self.trainer.lightning_module if self.trainer is not None else None
        if module is None:
            raise RuntimeError("data.cache_features=true: the feature loaders need the Trainer's model")
        dataset = self.feature_cache.dataset(split, module, self._image_loader(split), self.trainer)
        drop_last = split == "train" and len(dataset) >= self.batch_size  # as for images, see _loader
        return FeatureCache.loader(
            dataset, batch_size=self.batch_size, shuffle=shuffle, drop_last=drop_last, balanced=balanced
        )

    def train_dataloader(self) -> DataLoader:
        if not self.balanced_sampler:
            return self._loader("train", shuffle=True)
        counts = self.class_counts("train")
        weights = [1.0 / counts[label] for label in self.datasets["train"].labels]
        sampler = WeightedRandomSampler(weights, num_samples=len(weights), replacement=True)
        return self._loader("train", sampler=sampler)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        if not self.datasets["test"]:
            raise ValueError(f"The test split of {self.root} is empty: set data.test_fraction > 0 or add test/")
        return self._loader("test")
