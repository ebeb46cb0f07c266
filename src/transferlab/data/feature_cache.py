"""Cached feature extraction (``data.cache_features=true``): the frozen backbone runs once over each split, and
the head trains on the pooled features it produced, for every epoch.

With ``strategy=feature_extraction`` the backbone never changes, so running it again every epoch over the same
images recomputes the same numbers: that is all the time of an epoch. Here each split's images go through the
backbone once (eval mode, no grad, batched, under the Trainer's precision: bf16 on the GPU with ``trainer=gpu``),
at the first request of that split's loader, when the Trainer has already put the model on its device and, on a
resume, restored its weights. The features stay in memory on that device (``4 × feature_dim`` bytes per image:
2 KB for ResNet-18 and 8 KB for ResNet-50) and the loaders yield ``(features, labels)`` batches; the
``ImageClassifier`` sends 2-D inputs to its head alone. Training, metrics, logs and checkpoints are those of an
uncached run, and a checkpoint holds the whole network, so eval, predict and export read it unchanged.

Caching is refused (see :func:`check_cache_features`) where features would differ from epoch to epoch: random
augmentation (the model would train on one frozen draw of it, not on fresh ones) and strategies whose backbone
trains; and under DDP, where each rank would need its own shard of every split. There is no on-disk cache:
extraction is one eval pass, and a file cache would have to be keyed by everything that changes features (weights,
backbone, image size, preprocessing, the split, the library versions) to never be stale.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch import Tensor
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
    WeightedRandomSampler,
)

from transferlab.data.augment import Augment

log = logging.getLogger(__name__)

# Features and labels of every image of a loader, in its order: the train command hands the datamodule one
# (``training.features.feature_extractor``), so that the data side never reaches for the model.
FeatureExtractor = Callable[[DataLoader], tuple[Tensor, Tensor]]


def check_cache_features(*, cache_features: bool, strategy: str, augment: Augment) -> None:
    """Raises ValueError when features cached once would not be the features training would see."""
    if not isinstance(cache_features, bool):
        raise ValueError(f"data.cache_features={cache_features!r} must be true or false")
    if not cache_features:
        return
    if strategy != "feature_extraction":
        raise ValueError(
            f"data.cache_features=true needs strategy=feature_extraction, not strategy={strategy}: the backbone "
            "of this strategy trains, so its features change every step. Set data.cache_features=false."
        )
    random = augment.random_settings()
    if random:
        settings = ", ".join(f"augment.{key}={value}" for key, value in random.items())
        raise ValueError(
            f"data.cache_features=true needs augment=none, but {settings} augment every epoch differently, and "
            "features extracted once would train the head on one frozen draw of it. Set augment=none, or "
            "data.cache_features=false to keep augmentation (and run the backbone every epoch)."
        )


class FeatureCache:
    """Each split's features, extracted on first use, and loaders over them.

    A loader yields whole batches by indexing the feature tensor with a batch of indices (``batch_size=None``
    over a ``BatchSampler``): one gather per step, no per-sample collate. Its sampler is the one an image loader
    would use (``RandomSampler`` for shuffled training, ``WeightedRandomSampler`` for ``balanced_sampler``), so
    the order of samples follows the same random stream as an uncached run's.
    """

    def __init__(self) -> None:
        self.splits: dict[str, TensorDataset] = {}

    def dataset(self, split: str, extract: FeatureExtractor, images: DataLoader, *, world_size: int) -> TensorDataset:
        if split not in self.splits:
            if world_size > 1:
                raise ValueError(
                    "data.cache_features=true runs on one device: use trainer=gpu or trainer=cpu, or set "
                    "data.cache_features=false for DDP"
                )
            features, labels = extract(images)
            log.info("Cached the features of %d %s images on %s", len(labels), split, features.device)
            self.splits[split] = TensorDataset(features, labels)
        return self.splits[split]

    @staticmethod
    def loader(
        dataset: TensorDataset,
        *,
        batch_size: int,
        shuffle: bool = False,
        drop_last: bool = False,
        balanced: bool = False,
    ) -> DataLoader:
        if balanced:  # data.balanced_sampler: probability inverse to the class's frequency, as for images
            labels = dataset.tensors[1]
            weights = (1.0 / torch.bincount(labels).float())[labels]
            sampler = WeightedRandomSampler(weights.tolist(), num_samples=len(dataset), replacement=True)
        elif shuffle:
            sampler = RandomSampler(dataset)
        else:
            sampler = SequentialSampler(dataset)
        return DataLoader(dataset, batch_size=None, sampler=BatchSampler(sampler, batch_size, drop_last))
