"""FolderDataModule: loaders, labels, given splits, the balanced sampler."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch

from transferlab.data.datamodule import FolderDataModule

LIGHT = {"random_crop_scale": [0.5, 1.0], "hflip": 0.5, "rot90": 0.0, "color_jitter": 0.0}


def copy_images(source: Path, target: Path, count: int) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for image in sorted(source.iterdir())[:count]:
        shutil.copy(image, target / image.name)


def test_batches_are_normalised_tensors_with_sorted_class_indices(shapes_root: Path) -> None:
    dm = FolderDataModule(str(shapes_root), image_size=32, batch_size=4, num_workers=0, augment=LIGHT)
    dm.setup("fit")
    assert dm.class_names == ["circle", "ellipse", "rectangle", "star", "triangle"]
    assert dm.class_counts("train") == [11] * 5  # 15 per class: 10% of 15 rounds to 2 val and 2 test
    images, labels = next(iter(dm.val_dataloader()))
    # uint8 from the loader (a quarter of float32 to copy between processes); the model normalises on its device.
    assert images.shape == (4, 3, 32, 32) and images.dtype == torch.uint8
    expected = [dm.class_names.index(s.label) for s in dm.samples if s.split == "val"][:4]
    assert labels.tolist() == expected


def test_given_val_and_test_folders_are_used_as_given(tmp_path: Path, shapes_root: Path) -> None:
    for split, count in (("train", 8), ("val", 2), ("test", 3)):
        for name in ("circle", "star"):
            copy_images(shapes_root / name, tmp_path / split / name, count)
    dm = FolderDataModule(str(tmp_path), image_size=32, num_workers=0, augment=LIGHT)
    dm.setup()
    assert {split: len(ds) for split, ds in dm.datasets.items()} == {"train": 16, "val": 4, "test": 6}
    assert all(s.path.startswith(f"{s.split}/") for s in dm.samples)


def test_augmentation_is_reproducible_from_the_torch_seed(shapes_root: Path) -> None:
    dm = FolderDataModule(str(shapes_root), image_size=32, num_workers=0, augment=LIGHT)
    dm.setup()
    dataset = dm.datasets["train"]
    torch.manual_seed(1)
    first = torch.stack([dataset[i][0] for i in range(6)])
    torch.manual_seed(1)
    again = torch.stack([dataset[i][0] for i in range(6)])
    torch.manual_seed(2)
    other = torch.stack([dataset[i][0] for i in range(6)])
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_balanced_sampler_evens_out_an_imbalanced_train_split(tmp_path: Path, shapes_root: Path) -> None:
    copy_images(shapes_root / "circle", tmp_path / "circle", 15)
    copy_images(shapes_root / "star", tmp_path / "star", 5)
    none = {"random_crop_scale": None, "hflip": 0.0, "rot90": 0.0, "color_jitter": 0.0}
    dm = FolderDataModule(
        str(tmp_path),
        image_size=32,
        batch_size=64,
        num_workers=0,
        balanced_sampler=True,
        augment=none,
        val_fraction=0.2,
        test_fraction=0.0,
    )
    dm.setup()
    torch.manual_seed(0)
    drawn = Counter()
    for _ in range(20):
        for _, labels in dm.train_dataloader():
            drawn.update(labels.tolist())
    assert dm.class_counts("train") == [12, 4]
    assert 0.4 < drawn[1] / sum(drawn.values()) < 0.6  # 0.25 without the sampler


def test_empty_validation_split_is_refused(shapes_root: Path) -> None:
    dm = FolderDataModule(str(shapes_root), num_workers=0, val_fraction=0.0, augment=LIGHT)
    with pytest.raises(ValueError, match=r"data.val_fraction > 0"):
        dm.setup()


def test_bad_loader_settings_name_the_key(shapes_root: Path) -> None:
    with pytest.raises(ValueError, match=r"data.num_workers=-1"):
        FolderDataModule(str(shapes_root), num_workers=-1)
    with pytest.raises(ValueError, match=r"data.batch_size=0"):
        FolderDataModule(str(shapes_root), batch_size=0)


def test_train_batches_are_full_so_batchnorm_never_sees_one_image(shapes_root: Path) -> None:
    dm = FolderDataModule(
        str(shapes_root),
        image_size=32,
        batch_size=4,
        num_workers=0,
        augment=LIGHT,
        val_fraction=0.2,
        test_fraction=0.2,
    )
    dm.setup()
    assert len(dm.datasets["train"]) == 45  # 11 batches of 4 and one image left over
    assert [len(labels) for _, labels in dm.train_dataloader()] == [4] * 11
    assert sum(len(labels) for _, labels in dm.val_dataloader()) == 15  # evaluation keeps every image
