"""A class with no usable training image stops the run under every ``data.verify`` and ``data.bad_images``
setting, naming the class and what happened to its files; batches that skipped files empty or shrink still let
the epoch validate and checkpoint; ``data.batch_size=1`` with BatchNorm is refused up front."""

from __future__ import annotations

import csv
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import make_config
from PIL import Image

from transferlab.commands.train import run
from transferlab.data import bad_images
from transferlab.data.datamodule import FolderDataModule
from transferlab.runs.layout import LAST_CHECKPOINT, read_metrics

NONE = {"random_crop_scale": None, "hflip": 0.0, "rot90": 0.0, "color_jitter": 0.0}


def _png(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (24, 20, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


@pytest.fixture
def folder_with_a_dead_class(tmp_path: Path) -> Path:
    """cat/ and dog/ of readable PNGs; bird/ of files that are not images, named .jpg."""
    root = tmp_path / "photos"
    for i in range(6):
        _png(root / "cat" / f"c{i}.png", i)
        _png(root / "dog" / f"d{i}.png", 10 + i)
        (root / "bird" / f"b{i}.jpg").parent.mkdir(parents=True, exist_ok=True)
        (root / "bird" / f"b{i}.jpg").write_bytes(b"<html>not an image</html>" * 8)
    return root


def datamodule(root: Path, **kwargs) -> FolderDataModule:
    kwargs = {"image_size": 32, "batch_size": 4, "num_workers": 0, "augment": NONE} | kwargs
    return FolderDataModule(str(root), val_fraction=0.2, test_fraction=0.2, **kwargs)


def test_label_file_whose_class_is_all_missing_files_stops_naming_it(tmp_path: Path) -> None:
    # The CSV names café in NFC; the files it points to do not exist (as when a folder was renamed).
    root = tmp_path / "labelled"
    rows = []
    for i in range(6):
        _png(root / "img" / f"cat{i}.png", i)
        _png(root / "img" / f"dog{i}.png", 10 + i)
        rows += [(f"img/cat{i}.png", "cat"), (f"img/dog{i}.png", "dog"), (f"gone/café{i}.png", "café")]
    labels = root / "labels.csv"
    with labels.open("w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows([("path", "label"), *rows])
    for verify in ("none", "header", "full"):
        dm = datamodule(root, labels_file=str(labels), verify=verify, bad_images="skip")
        with pytest.raises(
            ValueError,
            match=r"no usable training image[^\n]*\n  'café': all 6 .*gone/café0\.png: "
            r"listed in data\.labels_file .* but missing",
        ):
            dm.setup("fit")


@pytest.mark.parametrize("verify", ["header", "full"])
def test_class_folder_of_unreadable_files_stops_before_training(folder_with_a_dead_class: Path, verify: str) -> None:
    dm = datamodule(folder_with_a_dead_class, verify=verify)
    with pytest.raises(ValueError, match=r"'bird': all \d+ training file\(s\) left out \(bird/b\d\.jpg: not an image"):
        dm.setup("fit")


def test_class_folder_of_unreadable_files_stops_when_the_loader_finds_the_last(folder_with_a_dead_class: Path) -> None:
    # The default, data.verify=auto under skip, checks names only: the loader finds the files unreadable.
    dm = datamodule(folder_with_a_dead_class)
    dm.setup("fit")
    train_birds = sum(label == "bird" for _, label, _ in dm.samples.part("train"))
    with pytest.raises(ValueError, match=rf"'bird': all {train_birds} training file\(s\) left out"):
        for _ in dm.train_dataloader():
            pass
    assert len([path for path in dm.skipped if path.startswith("bird/")]) == train_birds


def test_a_class_keeping_readable_images_trains_without_the_others(folder_with_a_dead_class: Path) -> None:
    for i in range(4):
        _png(folder_with_a_dead_class / "bird" / f"ok{i}.png", 90 + i)
    dm = datamodule(folder_with_a_dead_class, verify="header")
    dm.setup("fit")
    birds = {path for path, label, _ in dm.samples if label == "bird"}
    assert birds == {f"bird/ok{i}.png" for i in range(4)} and len(dm.skipped) == 6


@pytest.mark.parametrize("separator", ["/", "\\"])
def test_nfd_name_on_disk_for_an_nfc_label_file_is_the_same_file(tmp_path: Path, separator: str) -> None:
    # macOS writes names decomposed (NFD); a CSV typed elsewhere has them composed (NFC), on Windows with backslashes.
    root = tmp_path / "labelled"
    rows = []
    for i in range(5):
        for label in ("café", "tea"):
            _png(root / "img" / unicodedata.normalize("NFD", f"{label}{i}.png"), hash((label, i)) % 1000)
            rows.append((f"img{separator}{unicodedata.normalize('NFC', f'{label}{i}.png')}", label))
    labels = root / "labels.csv"
    with labels.open("w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows([("path", "label"), *rows])
    dm = datamodule(root, labels_file=str(labels), bad_images="error")
    dm.setup("fit")
    assert len(dm.samples) == 10 and not dm.skipped
    images, _ = next(iter(dm.train_dataloader()))
    assert images.shape[1:] == (3, 32, 32)


def test_an_epoch_whose_batch_lost_every_file_still_validates_and_checkpoints(
    config, tmp_path: Path, monkeypatch
) -> None:
    # The training loader's first batch arrives with every file unreadable (as collate_readable reports it). The
    # epoch must keep its validation and checkpoints; a loader that left the batch out made Lightning skip both.
    real_collate = bad_images.collate_readable
    calls = {"n": 0}

    def first_batch_unreadable(batch):
        calls["n"] += 1
        if calls["n"] == 1:
            return None, [bad_images.Unreadable(f"lost{i}.png", "cut short") for i in range(len(batch))]
        return real_collate(batch)

    monkeypatch.setattr(bad_images, "collate_readable", first_batch_unreadable)
    cfg = config("trainer.max_epochs=1", "data.num_workers=0")
    metrics = run(cfg)
    assert calls["n"] > 1
    assert metrics["epochs"] == 1 and (tmp_path / "run" / LAST_CHECKPOINT).is_file()
    assert read_metrics(tmp_path / "run")["best_val_acc"] is not None


def test_batch_of_one_is_skipped_only_where_batch_norm_trains(config) -> None:
    from transferlab.launch.build import Settings, build_datamodule, build_model

    cfg = config("model.backbone=timm/test_resnet")
    settings = Settings.of(cfg)
    model = build_model(cfg, settings, build_datamodule(cfg, settings, Path(cfg.paths.output_dir), None))
    model.train()
    one = (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), torch.zeros(1, dtype=torch.long))
    assert model.training_step(one, 0) is None  # BatchNorm cannot train on one image
    assert model.training_step(None, 1) is None  # a batch whose every file was unreadable
    for module in model.modules():  # frozen BatchNorm, as under feature extraction, takes a single image
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()
    loss = model.training_step(one, 2)
    assert loss is not None and loss.ndim == 0


def test_batch_size_one_with_batch_norm_is_refused_naming_the_alternatives(config, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"data\.batch_size=1 .*BatchNorm.*data\.batch_size=2.*feature_extraction"):
        run(config("trainer.max_epochs=1", "data.batch_size=1"))
    assert not (tmp_path / "run" / LAST_CHECKPOINT).exists()


def test_batch_size_one_trains_a_model_without_batch_norm(tmp_path: Path, shapes_root: Path) -> None:
    cfg = make_config(
        tmp_path / "run",
        shapes_root,
        "trainer.max_epochs=1",
        "data.batch_size=1",
        "model.backbone=timm/test_vit",
        "model.pretrained=false",
    )
    assert run(cfg)["epochs"] == 1


def test_the_first_bad_file_of_a_class_has_the_rest_of_it_checked(folder_with_a_dead_class: Path) -> None:
    # One epoch may never reach every file (its last batch dropped): the first bad file found by a loader under
    # data.verify=none has its class's other training files' headers checked at once.
    dm = datamodule(folder_with_a_dead_class)
    dm.setup("fit")
    train = dm.samples.part("train")
    cat = next(path for path, label, _ in train if label == "cat")
    dm.skips.record({cat: "cut short while training"})  # a healthy class: only that file is left out
    assert list(dm.skipped) == [cat]
    bird = next(path for path, label, _ in train if label == "bird")
    with pytest.raises(ValueError, match=r"'bird': all \d+ training file\(s\) left out"):
        dm.skips.record({bird: "not an image"})
