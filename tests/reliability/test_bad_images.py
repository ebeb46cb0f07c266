"""The bad-images policy on the generated corpus: what each check finds, error lists all, skip never batches."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import make_config

from transferlab.commands.train import run
from transferlab.data.bad_images import read_skipped_csv
from transferlab.data.datamodule import FolderDataModule
from transferlab.data.images import read_rgb
from transferlab.data.layouts import scan_folder

from .corpus import AWKWARD, BODY_BAD, HEADER_BAD, all_bad, header_bad, kinds

NONE = {"random_crop_scale": None, "hflip": 0.0, "rot90": 0.0, "color_jitter": 0.0}


def datamodule(root: Path, **kwargs) -> FolderDataModule:
    kwargs = {"image_size": 32, "batch_size": 1, "num_workers": 0, "augment": NONE, "val_fraction": 0.2} | kwargs
    return FolderDataModule(str(root), test_fraction=0.2, **kwargs)


def loaded_count(dm: FolderDataModule) -> int:
    """Images in every batch of every loader; fails if a batch holds anything but images."""
    assert dm.batch_size == 1  # so that the train loader's drop_last leaves nothing out and counts are exact
    total = 0
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        for batch in loader:
            if batch is None:  # the training loader's batch whose every file was unreadable (SkippingDataLoader)
                assert loader.keep_empty
                continue
            images, labels = batch
            assert images.shape[1:] == (3, 32, 32) and len(labels) == len(images)
            total += len(images)
    return total


def test_corpus_covers_at_least_20_kinds() -> None:
    assert kinds() >= 20


def test_scan_lists_every_image_like_file_once_and_ignores_the_rest(corpus: Path) -> None:
    cat = {path for path, label, _ in scan_folder(corpus) if label == "cat"}
    expected = {f"cat/{name}" for name in (*HEADER_BAD, *BODY_BAD, *AWKWARD)} | {f"cat/plain{i}.png" for i in range(10)}
    assert cat == expected  # no hidden files, no link loops, nothing found twice through loopdir


def test_awkward_but_valid_images_read_upright_as_rgb(corpus: Path) -> None:
    for name, (_, (height, width)) in AWKWARD.items():
        array = read_rgb(corpus / "cat" / name)
        assert array.shape == (height, width, 3) and array.dtype == np.uint8, name
    assert (read_rgb(corpus / "cat/gray16.png") == round(40000 / 257)).all()  # scaled, not clipped to 255
    np.testing.assert_allclose(read_rgb(corpus / "cat/cmyk.jpg")[4, 4], (255, 0, 0), atol=10)


@pytest.mark.parametrize(("verify", "expected"), [("header", header_bad), ("full", all_bad)])
def test_error_policy_lists_every_bad_file_with_reason_and_hint(corpus: Path, verify: str, expected) -> None:
    dm = datamodule(corpus, bad_images="error", verify=verify)
    with pytest.raises(ValueError, match=r"data\.bad_images=skip") as error:
        dm.setup()
    message = str(error.value)
    listed = {line.strip().split(": ")[0] for line in message.splitlines() if line.startswith("  ")}
    assert listed == expected()
    assert f"{len(expected())} file(s)" in message
    assert "cat/empty.jpg: empty file (0 bytes)" in message
    assert "cat/text-named.png: not an image" in message
    assert "cat/bomb.png: DecompressionBombError" in message
    assert not any(name in message for name in AWKWARD)


def test_error_policy_is_the_header_check_by_default(corpus: Path) -> None:
    assert datamodule(corpus, bad_images="error").verify == "header"
    assert datamodule(corpus, bad_images="skip").verify == "none"


def test_skip_leaves_bad_files_out_lists_them_and_never_batches_them(corpus: Path, tmp_path: Path) -> None:
    skipped_file = tmp_path / "run" / "skipped_images.csv"
    dm = datamodule(corpus, bad_images="skip", verify="header", skipped_file=str(skipped_file), num_workers=2)
    dm.setup()
    kept = {s.path for s in dm.samples}
    assert not kept & header_bad()
    assert {f"cat/{name}" for name in AWKWARD} <= kept
    assert set(read_skipped_csv(skipped_file)) == header_bad()

    # The truncated files pass a header check; the loader workers meet them, survive, and leave them out.
    assert loaded_count(dm) == len(kept) - len(BODY_BAD)
    assert set(read_skipped_csv(skipped_file)) == all_bad()
    assert set(dm.skipped) == all_bad()
    with skipped_file.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert {row["reason"] for row in rows if row["path"] == "cat/truncated.jpg"} == {"image file is truncated"} or all(
        row["reason"] for row in rows
    )


def test_full_verify_finds_truncated_files_before_training(corpus: Path) -> None:
    dm = datamodule(corpus, bad_images="skip", verify="full")
    dm.setup()
    assert set(dm.skipped) == all_bad()
    assert loaded_count(dm) == len(dm.samples)


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_file_damaged_during_training_meets_the_policy_in_loader_workers(corpus: Path, damage: str) -> None:
    good = {"cat": corpus / "cat", "dog": corpus / "dog"}
    root = corpus.parent / "clean"
    for label, folder in good.items():
        (root / label).mkdir(parents=True)
        for i in range(10):
            (root / label / f"{i}.png").write_bytes((folder / f"plain{i}.png").read_bytes())
    skip = datamodule(root, bad_images="skip", num_workers=2)
    error = datamodule(root, bad_images="error", num_workers=2)
    skip.setup(), error.setup()
    assert not skip.skipped and error.samples == skip.samples  # the scan found nothing wrong
    victim = root / skip.samples[0].path  # a training image
    if damage == "delete":
        victim.unlink()
    else:
        victim.write_bytes(victim.read_bytes()[:100])
    assert loaded_count(skip) == len(skip.samples) - 1
    assert list(skip.skipped) == [skip.samples[0].path]
    with pytest.raises(ValueError, match=rf"{victim.name}.*data\.bad_images=skip"):
        loaded_count(error)


def test_run_with_skip_writes_the_list_into_the_run_dir(corpus: Path, tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "run", corpus, "trainer.max_epochs=1", "data.verify=header")
    metrics = run(cfg)
    listed = read_skipped_csv(tmp_path / "run" / "skipped_images.csv")
    assert set(listed) >= header_bad()
    assert metrics["skipped_images"] == len(listed)
    splits = (tmp_path / "run" / "splits.csv").read_bytes()
    assert os.fsencode("caf\udce9-latin1.png") in splits  # the non-UTF-8 name, byte for byte
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["skipped_images"] == len(listed)
