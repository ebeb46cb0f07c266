"""``FolderDataModule``: a folder of labelled images as train/val/test loaders, and the class list.

What a dataset holds lives in ``layouts.py`` and ``label_files.py``, splitting in ``splits.py``, the per-split
datasets and loader settings in ``datasets.py``, left-out files in ``bad_images.py``; this module wires them
into Lightning: which files go to which loader, with which transform and sampler.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pytorch_lightning import LightningDataModule
from torch.utils.data import DataLoader

from transferlab.checks import boolean
from transferlab.data.augment import Augment
from transferlab.data.bad_images import SkippedImages, SkippingDataLoader, resolve_verify
from transferlab.data.datasets import (
    ImageFileDataset,
    check_loader_settings,
    class_balanced_sampler,
    image_loader,
    split_datasets,
)
from transferlab.data.demo import make_demo_dataset
from transferlab.data.download import fetch_dataset
from transferlab.data.feature_cache import FeatureCache, FeatureExtractor
from transferlab.data.images import set_max_image_pixels
from transferlab.data.label_files import read_labels
from transferlab.data.layouts import dataset_root, scan_folder
from transferlab.data.preprocessing import Preprocessing
from transferlab.data.samples import SPLITS, SampleTable
from transferlab.data.splits import load_or_make_splits, training_pool

log = logging.getLogger(__name__)


def root_and_demo(
    root: str | None, labels_file: str | Any | None, demo: dict[str, Any] | None
) -> tuple[Path, dict[str, Any] | None, int | None]:
    """The data root; the arguments of ``make_demo_dataset`` when the demo is used, else None; the demo's
    ``train_image_size``.

    The demo is used only when no root and no label file is given: data.root=/my/images with the default (demo)
    config trains on /my/images, at the model's size rather than the demo's.
    """
    demo = dict(demo or {})
    demo_root, demo_size = demo.pop("root", None), demo.pop("train_image_size", None)
    data_root = dataset_root(root, labels_file=labels_file, demo_root=demo_root if demo else None)
    used = demo if demo and root in (None, "") and labels_file is None else None
    if demo and used is None:
        log.info("Training on %s: the demo dataset is used only when data.root is not set", data_root)
    return data_root, used, demo_size


class FolderDataModule(LightningDataModule):
    """Images in ``root/<class>/*``, ``root/<split>/<class>/*`` (see ``layouts.py``), or listed in a label table.

    Args:
        root: the dataset folder; paths of a label table are relative to it. None: the label file's folder, or,
            without a label file, the demo dataset (``demo``).
        labels_file: a label table instead of class folders: a CSV file (``data.labels_file``) or a pandas DataFrame
            with columns ``path``, ``label`` and optionally ``split`` (see ``label_files.read_labels``).
        image_size: side of the square crops the network sees; None: the demo's ``train_image_size`` when the
            demo is used, else the size of ``preprocessing``.
        preprocessing: what the model's weights expect (``backbones.preprocessing_for``): their input size (used
            when ``image_size`` is None and the demo is not used), resize ratio, interpolation and normalisation;
            None: ImageNet's 224 px. :attr:`preprocessing` is this with the data's own size and ratio, and travels
            inside checkpoints.
        batch_size: per process.
        num_workers: loader processes, or ``"auto"`` for one per core (at most 8).
        val_fraction, test_fraction, split_seed: how missing val/test splits are drawn from train (stratified).
        splits_file: a ``splits.csv`` to reuse instead of splitting.
        folds, fold: k-fold cross-validation: the non-test images in ``folds`` stratified folds, fold ``fold``
            validating (see ``stratified.stratified_split``); None: one split by ``val_fraction``.
        balanced_sampler: draw training images with probability inverse to their class's frequency.
        augment: the ``augment`` config group (an :class:`~transferlab.data.transforms.Augment` or its dict).
        resize_ratio: eval resizes the shorter side to ``image_size / resize_ratio`` before the centre crop; None:
            the ratio of ``preprocessing``.
        demo: the demo dataset, used when neither ``root`` nor ``labels_file`` is given: ``root`` (where it is
            generated on first use), ``train_image_size`` (its ``image_size`` default) and the arguments of
            ``make_demo_dataset``.
        max_image_pixels: images with more pixels are refused as decompression bombs; None: Pillow's limit.
        merge_case: class names (folders or labels) that differ only by case or Unicode form (``Cat``, ``cat``)
            are one class, named as its most frequent spelling; false: they stop with an error listing them.
        download: arguments of ``fetch_dataset`` (``url``, ``sha256``, ``subdir``); when given, ``root`` is
            downloaded and extracted on first use and reused after.
        bad_images: ``skip`` or ``error``: what an unreadable image file does (see ``bad_images.py``).
        verify: ``auto``, ``none``, ``header`` or ``full``: how files are checked before training.
        skipped_file: where skipped files are listed (``skipped_images.csv`` in the run dir); None: only logged.
        cache_features: loaders yield the frozen backbone's features, extracted once per split by the extractor
            the train command hands over (:meth:`use_feature_extractor`, see ``feature_cache.py``);
            ``strategy=feature_extraction`` and ``augment=none`` only.
    """

    def __init__(
        self,
        root: str | None = None,
        *,
        labels_file: str | Any | None = None,
        image_size: int | None = None,
        preprocessing: Preprocessing | Mapping[str, Any] | None = None,
        batch_size: int = 32,
        num_workers: int | str = "auto",
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        splits_file: str | None = None,
        folds: int | None = None,
        fold: int = 0,
        balanced_sampler: bool = False,
        augment: Augment | Mapping[str, Any] | None = None,
        resize_ratio: float | None = None,
        demo: dict[str, Any] | None = None,
        download: dict[str, Any] | None = None,
        bad_images: str = "skip",
        verify: str = "auto",
        skipped_file: str | None = None,
        cache_features: bool = False,
        max_image_pixels: int | None = None,
        merge_case: bool = False,
    ) -> None:
        super().__init__()
        set_max_image_pixels(max_image_pixels)  # checks the value; loader workers repeat it (ImageFileDataset)
        self.max_image_pixels = max_image_pixels
        self.verify = resolve_verify(bad_images, verify)
        self.bad_images = bad_images
        self.skipped_file = None if skipped_file is None else Path(skipped_file)
        self.num_workers = check_loader_settings(batch_size=batch_size, num_workers=num_workers)
        self.root, self.demo, demo_size = root_and_demo(root, labels_file, demo)
        self.labels_file = labels_file
        self.merge_case = boolean("data.merge_case", merge_case)
        self.skips = SkippedImages(self.root, bad_images=bad_images, verify=self.verify, skipped_file=self.skipped_file)
        self.skipped = self.skips.skipped  # path relative to root -> reason, found by the scan or by a loader
        weights = _preprocessing(preprocessing)
        image_size = image_size or (self.demo and demo_size) or weights.image_size
        # What inference must do to an image: this data's resize and crop, then the weights' normalisation (not used
        # here: batches leave the loaders as uint8, and the model normalises them on its device).
        self.preprocessing = replace(weights, image_size=image_size, resize_ratio=resize_ratio or weights.resize_ratio)
        self.image_size = self.preprocessing.image_size
        self.batch_size = batch_size
        self.val_fraction, self.test_fraction, self.split_seed = val_fraction, test_fraction, split_seed
        self.splits_file = splits_file
        self.folds, self.fold = folds, fold
        self.balanced_sampler = balanced_sampler
        self.augment = augment if isinstance(augment, Augment) else Augment.from_config(augment)
        self.download = download
        self.found: SampleTable | None = None  # what the folders or label table hold, before the split
        self.listed: SampleTable | None = None  # the same with the files a label table lists that are missing
        self.samples: SampleTable | None = None
        self.datasets: dict[str, ImageFileDataset] = {}
        self.cache_features = cache_features
        self.feature_cache = FeatureCache()
        self.feature_extractor: FeatureExtractor | None = None

    @property
    def class_names(self) -> list[str]:
        """The sorted class folder names; empty before `setup`."""
        return [] if self.samples is None else self.samples.class_names

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def use_feature_extractor(self, extract: FeatureExtractor) -> None:
        """``data.cache_features=true``: the loaders yield what ``extract`` makes of each split's images, once per
        split (the train command hands over ``training.features.feature_extractor``)."""
        self.feature_extractor = extract

    def prepare_data(self) -> None:
        if self.demo is not None:
            make_demo_dataset(self.root, **self.demo)
        if self.download is not None:
            fetch_dataset(root=self.root, **self.download)

    def setup(self, stage: str | None = None) -> None:
        if self.samples is not None:  # Lightning calls setup once per fit/test; the split never changes within a run
            return
        found = self.find_images()
        self.skips.watch(training_pool(self.listed))  # a class whose listed files are all missing stops here
        self.samples = load_or_make_splits(
            found,
            self.root,
            val_fraction=self.val_fraction,
            test_fraction=self.test_fraction,
            seed=self.split_seed,
            splits_file=self.splits_file,
            exclude=self.skips.find_bad_images,
            folds=self.folds,
            fold=self.fold,
            on_missing=self.skips.on_missing,
        )
        self.skips.watch(self.samples.part("train"))
        if not len(self.samples.part("val")):
            raise ValueError(
                f"The validation split of {self.root} is empty: set data.val_fraction > 0 or add a val/ folder"
            )
        self.datasets.update(
            split_datasets(
                self.root,
                self.samples,
                preprocessing=self.preprocessing,
                augment=self.augment,
                cache_features=self.cache_features,
                bad_images=self.bad_images,
                max_image_pixels=self.max_image_pixels,
            )
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
        self.prepare_data()  # idempotent; makes this usable before a Trainer exists (training needs the classes)
        if self.labels_file is None:
            self.found = self.listed = scan_folder(self.root, merge_case=self.merge_case)
            return self.found
        table, missing = read_labels(self.labels_file, self.root, merge_case=self.merge_case)
        self.listed = table
        if missing:
            self.skips.on_missing(missing)  # raises under data.bad_images=error; records them under skip
        self.found = table.select(np.fromiter((p not in missing for p in table.paths), dtype=bool, count=len(table)))
        return self.found

    def class_counts(self, split: str = "train") -> list[int]:
        return self.samples.part(split).class_counts()

    def _loader(self, split: str, *, shuffle: bool = False, sampler=None) -> DataLoader:
        dataset = self.datasets[split]
        if self.cache_features:
            return self._cached_loader(split, shuffle=shuffle, balanced=sampler is not None)
        return image_loader(
            dataset,
            self.skips.on_unreadable,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            shuffle=shuffle,
            sampler=sampler,
            # A last training batch of one image makes BatchNorm fail in train mode (one value per channel), and
            # tiny last batches give noisy steps; the images dropped differ every epoch, since train reshuffles.
            drop_last=split == "train" and len(dataset) >= self.batch_size,
            keep_empty=split == "train",  # see SkippingDataLoader: the epoch keeps its validation
            persistent_workers=self.num_workers > 0,
        )

    def _image_loader(self, split: str) -> SkippingDataLoader:
        """Every image of ``split`` in order, with the eval preprocessing: what a feature cache reads once."""
        return image_loader(
            self.datasets[split],
            self.skips.on_unreadable,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            # Its own generator: a loader draws a seed when iterated, and drawing it from torch's global stream
            # would shift every later shuffle away from the uncached run's.
            generator=torch.Generator(),
        )

    def _cached_loader(self, split: str, *, shuffle: bool = False, balanced: bool = False) -> DataLoader:
        if self.feature_extractor is None:
            raise RuntimeError("data.cache_features=true: call use_feature_extractor before asking for a loader")
        world_size = self.trainer.world_size if self.trainer is not None else 1
        dataset = self.feature_cache.dataset(
            split, self.feature_extractor, self._image_loader(split), world_size=world_size
        )
        drop_last = split == "train" and len(dataset) >= self.batch_size  # as for images, see _loader
        return FeatureCache.loader(
            dataset, batch_size=self.batch_size, shuffle=shuffle, drop_last=drop_last, balanced=balanced
        )

    def train_dataloader(self) -> DataLoader:
        if not self.balanced_sampler:
            return self._loader("train", shuffle=True)
        return self._loader("train", sampler=class_balanced_sampler(self.datasets["train"], self.class_counts("train")))

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        if not self.datasets["test"]:
            raise ValueError(f"The test split of {self.root} is empty: set data.test_fraction > 0 or add test/")
        return self._loader("test")


def _preprocessing(value: Preprocessing | Mapping[str, Any] | None) -> Preprocessing:
    """A ``preprocessing`` argument as given through Hydra's instantiate (a dict) or from Python."""
    if value is None:
        return Preprocessing(image_size=224)
    return value if isinstance(value, Preprocessing) else Preprocessing.from_dict(value)
