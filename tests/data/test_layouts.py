"""Tests for transferlab.data.layouts: which folder layout a root has, and label files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from transferlab.data.datamodule import FolderDataModule
from transferlab.data.label_files import read_labels
from transferlab.data.layouts import dataset_root, detect_layout, scan_folder
from transferlab.data.preprocessing import Preprocessing
from transferlab.data.splits import write_splits_csv

NO_AUGMENT = {"random_crop_scale": None, "hflip": 0.0, "rot90": 0.0, "color_jitter": 0.0}


def module(*args, **kwargs) -> FolderDataModule:
    return FolderDataModule(*args, augment=NO_AUGMENT, **kwargs)


# (top-level folders, split folders found, or the words the error must contain)
LAYOUT_CASES = [
    (["cat", "dog"], {}),
    (["train", "val", "test"], {"train": "train", "val": "val", "test": "test"}),
    (["train", "validation"], {"train": "train", "val": "validation"}),  # Keras / TensorFlow dogs-vs-cats
    (["Training", "Valid", "Testing"], {"train": "Training", "val": "Valid", "test": "Testing"}),
    (["TRAIN", "dev"], {"train": "TRAIN", "val": "dev"}),
    (["train"], {"train": "train"}),
    (["train", "validation", "cat"], ["mixes split folders", "'train', 'validation'", "'cat'"]),
    (["cat", "test"], ["mixes split folders", "'test'", "'cat'"]),
    (["train", "val", "valid"], ["several folders for one split", "val: ['val', 'valid']"]),
    (["val", "test"], ["no training folder"]),
]


@pytest.mark.parametrize(("folders", "expected"), LAYOUT_CASES)
def test_layout_is_decided_by_the_top_level_folder_names(folders, expected):
    if isinstance(expected, dict):
        assert detect_layout("root", folders) == expected
    else:
        with pytest.raises(ValueError) as error:
            detect_layout("root", folders)
        for words in [*expected, "root/<class>/<images>", "data.labels_file"]:
            assert words in str(error.value)


def write_images(root: Path, *rel_paths: str, size: int = 24) -> None:
    """Real little PNG/JPEG files (the extension picks the format), a different grey per file."""
    for i, rel in enumerate(rel_paths):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (size + i % 5, size), (i * 37 % 256,) * 3).save(path)


def keras_layout(root: Path) -> None:
    """The dogs-vs-cats layout of the Keras lecture: train/ and validation/ of class folders, capitalised here."""
    write_images(root, *(f"Train/{c}/{c}.{i}.jpg" for c in ("cats", "dogs") for i in range(6)))
    write_images(root, *(f"Validation/{c}/{c}.{i}.jpg" for c in ("cats", "dogs") for i in range(6, 9)))


def test_keras_split_folders_are_splits_not_classes(tmp_path):
    keras_layout(tmp_path)
    dm = module(str(tmp_path), image_size=16, num_workers=0, test_fraction=0.25)
    dm.setup()
    assert dm.class_names == ["cats", "dogs"]
    counts = {split: dm.samples.part(split).class_counts() for split in ("train", "val", "test")}
    # validation/ is used as given; test is drawn from Train/ (25 % of 6 = 2 per class, halves up).
    assert counts == {"train": [4, 4], "val": [3, 3], "test": [2, 2]}
    assert all(p.startswith("Validation/") for p in dm.samples.part("val").paths)
    write_splits_csv(tmp_path / "splits.csv", dm.samples)
    assert "Validation/cats/cats.6.jpg,cats,val" in (tmp_path / "splits.csv").read_text()


def test_mixed_top_level_folders_are_an_error_naming_them(tmp_path):
    keras_layout(tmp_path)
    write_images(tmp_path, "birds/b.0.jpg", "birds/b.1.jpg")
    with pytest.raises(ValueError, match=r"mixes split folders \['Train', 'Validation'\] with other folders"):
        scan_folder(tmp_path)


def test_split_folders_without_class_folders_are_an_error(tmp_path):
    write_images(tmp_path, "train/1.jpg", "train/2.jpg", "validation/3.jpg")
    with pytest.raises(ValueError, match=r"train has no class folders.*two folder layouts"):
        scan_folder(tmp_path)


# --- label files ---------------------------------------------------------------------------------------------


def labelled_folder(root: Path, n: int = 10) -> list[tuple[str, str]]:
    """Flat files whose class is known only from a table (the Kaggle form); odd names included."""
    rows = [
        (f"img/{i:03d}, copy.png" if i % 4 == 0 else f"img/{i:03d}.png", "cat" if i % 2 else "dog") for i in range(n)
    ]
    write_images(root, *(path for path, _ in rows))
    return rows


def test_label_file_without_split_column_is_split_stratified(tmp_path):
    rows = labelled_folder(tmp_path, 20)
    pd.DataFrame(rows, columns=["path", "label"]).to_csv(tmp_path / "labels.csv", index=False)
    dm = module(labels_file=str(tmp_path / "labels.csv"), image_size=16, num_workers=0, val_fraction=0.2)
    dm.setup()
    assert dm.root == tmp_path  # the label file's folder when data.root is not given
    assert dm.class_names == ["cat", "dog"]
    counts = {split: dm.samples.part(split).class_counts() for split in ("train", "val", "test")}
    assert counts == {"train": [7, 7], "val": [2, 2], "test": [1, 1]}
    assert sorted(dm.samples.paths) == sorted(path for path, _ in rows)
    images, _ = next(iter(dm.train_dataloader()))
    assert images.shape[1:] == (3, 16, 16)


def test_label_file_split_column_is_used_as_given_and_empty_rows_are_drawn(tmp_path):
    rows = labelled_folder(tmp_path, 24)
    splits = ["Validation" if i < 4 else "test" if i < 6 else "" if i < 16 else "train" for i in range(24)]
    frame = pd.DataFrame(
        [(p, lab, s) for (p, lab), s in zip(rows, splits, strict=True)], columns=["path", "label", "split"]
    )
    frame["source"] = "ignored extra column"
    dm = module(str(tmp_path), labels_file=frame, image_size=16, num_workers=0, val_fraction=0.2)
    dm.setup()
    split_of = {s.path: s.split for s in dm.samples}
    assert [split_of[p] for p, _ in rows[:6]] == ["val"] * 4 + ["test"] * 2
    assert all(split_of[p] == "train" for p, _ in rows[16:])
    # The 10 rows without a split, 5 per class: 20 % → 1 val per class, 10 % → 1 test (0.5 rounds up).
    drawn = [split_of[p] for p, _ in rows[6:16]]
    assert sorted(drawn) == ["test"] * 2 + ["train"] * 6 + ["val"] * 2


def test_label_file_absolute_and_relative_paths(tmp_path):
    write_images(tmp_path / "data", "a/1.png", "a/2.png", "a/3.png")
    write_images(tmp_path / "elsewhere", "b1.png", "b2.png", "b3.png")
    rows = [("a/1.png", "x"), ("./a/2.png", "x"), ("a//3.png", "x")]
    rows += [(str(tmp_path / "elsewhere" / f"b{i}.png"), "y") for i in (1, 2, 3)]
    table, missing = read_labels(pd.DataFrame(rows, columns=["path", "label"]), tmp_path / "data")
    assert missing == {}
    assert sorted(table.paths) == sorted(["a/1.png", "a/2.png", "a/3.png", *(r[0] for r in rows[3:])])
    assert table.class_counts() == [3, 3]


def test_label_file_errors_name_the_rows(tmp_path):
    write_images(tmp_path, "1.png", "2.png", "3.png")
    bad = "path,label,split\n1.png,cat,\n2.png,,train\n1.png,dog,\n3.png,dog,holdout\n"
    (tmp_path / "bad.csv").write_text(bad)
    with pytest.raises(ValueError) as error:
        read_labels(tmp_path / "bad.csv", tmp_path)
    message = str(error.value)
    assert "empty label in row(s) [3]" in message
    assert "'1.png' (rows 2 and 4)" in message
    assert "unknown split in row(s) [(5, 'holdout')]" in message
    (tmp_path / "cols.csv").write_text("file,class\n1.png,cat\n")
    with pytest.raises(ValueError, match=r"has columns \['file', 'class'\] but needs \['path', 'label'\]"):
        read_labels(tmp_path / "cols.csv", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"nope\.csv"):
        read_labels(tmp_path / "nope.csv", tmp_path)


def test_listed_but_missing_files_follow_the_bad_images_policy(tmp_path, caplog):
    rows = labelled_folder(tmp_path, 12)
    rows += [("img/gone.png", "cat")]
    write_images(tmp_path, "img/unlisted.png")
    pd.DataFrame(rows, columns=["path", "label"]).to_csv(tmp_path / "labels.csv", index=False)
    labels = str(tmp_path / "labels.csv")
    with pytest.raises(ValueError, match=r"img/gone.png: listed in data.labels_file .* but missing"):
        module(labels_file=labels, image_size=16, num_workers=0, bad_images="error").setup()
    skipped = tmp_path / "skipped_images.csv"
    dm = module(labels_file=labels, image_size=16, num_workers=0, val_fraction=0.2, skipped_file=str(skipped))
    dm.setup()
    assert "img/gone.png" not in set(dm.samples.paths) and len(dm.samples) == 12
    assert "img/gone.png,listed in data.labels_file" in skipped.read_text()
    assert "1 image(s) under" in caplog.text and "img/unlisted.png" in caplog.text


def test_data_root_falls_back_to_the_label_file_then_the_demo():
    assert dataset_root("/data", labels_file="/x/labels.csv", demo_root="/demo") == Path("/data")
    assert dataset_root(None, labels_file="/x/labels.csv", demo_root="/demo") == Path("/x")
    assert dataset_root(None, demo_root="/demo") == Path("/demo")
    with pytest.raises(ValueError, match=r"data\.root is not set"):
        dataset_root(None)


def test_a_given_root_wins_over_the_demo(tmp_path):
    keras_layout(tmp_path)
    demo = {"root": str(tmp_path / "demo"), "images_per_class": 10, "image_size": 24, "train_image_size": 20}
    dm = module(str(tmp_path), demo=demo, num_workers=0, preprocessing=Preprocessing(image_size=40))
    dm.setup()
    assert dm.class_names == ["cats", "dogs"] and dm.image_size == 40
    assert not (tmp_path / "demo").exists()
    demo_dm = module(
        None, demo=demo, num_workers=0, preprocessing=Preprocessing(image_size=40), val_fraction=0.2, test_fraction=0.2
    )
    demo_dm.setup()
    assert demo_dm.root == tmp_path / "demo" and demo_dm.image_size == 20 and len(demo_dm.class_names) == 5
    assert np.all(demo_dm.samples.splits >= 0)


def test_class_folders_that_differ_only_by_case_are_an_error_or_one_class(tmp_path: Path) -> None:
    """Cat/ and cat/ side by side (issue 24): never two classes without a word."""
    write_images(tmp_path, "Cat/1.png", "cat/2.png", "cat/3.png", "dog/4.png", "dog/5.png")
    with pytest.raises(ValueError, match=r"differ only by case.*'Cat' \(1 images\) / 'cat' \(2 images\).*merge_case"):
        scan_folder(tmp_path)
    table = scan_folder(tmp_path, merge_case=True)
    assert table.class_names == ["cat", "dog"]  # the spelling with most images names the class
    assert sorted(sample.path for sample in table if sample.label == "cat") == ["Cat/1.png", "cat/2.png", "cat/3.png"]


def test_labels_that_differ_only_by_spaces_case_or_unicode_form(tmp_path: Path) -> None:
    """cat, 'cat ', Cat, dog, 'dog ', Dog and café in NFC and NFD: spaces are stripped, the rest is an error or
    merged with data.merge_case=true; never six classes out of three."""
    import unicodedata

    names = ["cat", "cat ", "Cat", "dog", "dog ", "Dog", "café", unicodedata.normalize("NFD", "café")]
    labels = pd.DataFrame({"path": [f"{i}.png" for i in range(len(names))], "label": names})
    write_images(tmp_path, *labels["path"])
    with pytest.raises(ValueError) as error:
        read_labels(labels, tmp_path)
    assert "'Cat' (1 images) / 'cat' (2 images)" in str(error.value)
    assert "'Dog' (1 images) / 'dog' (2 images)" in str(error.value) and "café" in str(error.value)
    table, missing = read_labels(labels, tmp_path, merge_case=True)
    assert not missing and len(table.class_names) == 3
    assert {"cat", "dog"} <= set(table.class_names)
    assert unicodedata.normalize("NFC", next(n for n in table.class_names if n.startswith("caf"))) == "café"
    assert table.class_counts() == [2, 3, 3]
    assert module(str(tmp_path), labels_file=labels, merge_case=True, num_workers=0).find_images().class_names == (
        table.class_names
    )


def test_archive_and_file_system_leftovers_are_not_classes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A zip made on a Mac, a Synology share, a Windows drive (issue 24): __MACOSX with its ._ files, @eaDir
    thumbnails, $RECYCLE.BIN, .ipynb_checkpoints, Thumbs.db: none is a class, an image, or a mixed layout."""
    write_images(
        tmp_path,
        *("train/cat/1.png", "train/cat/2.png", "train/dog/3.png", "train/dog/4.png", "validation/cat/5.png"),
        *("validation/dog/6.png", "__MACOSX/train/cat/._1.png", "train/cat/@eaDir/1.png/SYNOFILE_THUMB_M.jpg"),
        *("$RECYCLE.BIN/old.png", "System Volume Information/x.png", ".ipynb_checkpoints/y.png"),
    )
    (tmp_path / "train" / "cat" / "Thumbs.db").write_bytes(b"\0" * 16)
    (tmp_path / "train" / "dog" / "desktop.ini").write_text("[.ShellClassInfo]\n")
    with caplog.at_level("INFO", logger="transferlab.data.layouts"):
        table = scan_folder(tmp_path)
    assert table.class_names == ["cat", "dog"] and len(table) == 6
    assert not [s.path for s in table if "@eaDir" in s.path or "MACOSX" in s.path]
    assert "'$RECYCLE.BIN', '@eaDir', 'System Volume Information', '__MACOSX'" in caplog.text


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("excel_utf8.csv", "\ufeffpath,label\n{rows}"),  # Excel's "CSV UTF-8": a byte-order mark
        ("european.csv", "path;label\n{rows_semicolon}"),  # European Excel: semicolons
        ("tabs.csv", "path\tlabel\n{rows_tab}"),
        ("quoted.csv", '"path","label"\n{rows}'),
        ("pandas_index.csv", ",path,label\n{rows_indexed}"),  # DataFrame.to_csv without index=False
    ],
)
def test_spreadsheet_exports_read_as_intended(tmp_path: Path, name: str, text: str) -> None:
    """Issue 24: a label file as spreadsheets and pandas write it gives the same table as a plain CSV."""
    files = ["a 1.png", "a;2.png", "b 3.png", "b,4.png"]  # separators inside names, quoted where the CSV needs it
    labels = ["a", "a", "b", "b"]
    write_images(tmp_path, *files)
    rows = "".join(f'"{f}",{lab}\n' for f, lab in zip(files, labels, strict=True))
    text = text.format(
        rows=rows,
        rows_semicolon="".join(f'"{f}";{lab}\n' for f, lab in zip(files, labels, strict=True)),
        rows_tab="".join(f"{f}\t{lab}\n" for f, lab in zip(files, labels, strict=True)),
        rows_indexed="".join(f'{i},"{f}",{lab}\n' for i, (f, lab) in enumerate(zip(files, labels, strict=True))),
    )
    (tmp_path / name).write_text(text, encoding="utf-8")
    table, missing = read_labels(tmp_path / name, tmp_path)
    assert not missing and table.class_names == ["a", "b"]
    assert sorted(table.paths.tolist()) == sorted(files)


def test_windows_paths_in_a_label_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_images(tmp_path, "img/001.png", "img/002.png", "other/003.png", "other/004.png")
    (tmp_path / "labels.csv").write_text(
        "path,label\nimg\\001.png,a\nimg\\002.png,a\nother/003.png,b\nother\\004.png,b\n"
    )
    with caplog.at_level("INFO", logger="transferlab.data.label_files"):
        table, missing = read_labels(tmp_path / "labels.csv", tmp_path)
    assert not missing and sorted(table.paths.tolist()) == [
        "img/001.png",
        "img/002.png",
        "other/003.png",
        "other/004.png",
    ]
    assert "read 3 path(s) with backslashes as folder separators" in caplog.text


def test_links_never_count_an_image_twice(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import os

    root = tmp_path / "photos"
    write_images(root, *(f"cat/{i}.png" for i in range(3)), *(f"dog/{i}.png" for i in range(3)))
    elsewhere = tmp_path / "elsewhere"
    write_images(elsewhere, "e0.png", "e1.png")
    os.symlink("cat", root / "kitty")  # a second name for a class: not a class
    os.symlink(".", root / "all")  # the root again: not a class holding every image
    os.symlink(elsewhere, root / "eel")  # data stored elsewhere: a class, as before
    os.symlink("../cat/0.png", root / "dog" / "also-cat.png")  # one file under two classes: kept once
    with caplog.at_level("INFO"):
        table = scan_folder(root)
    assert table.class_names == ["cat", "dog", "eel"]
    assert sorted(table.paths) == [
        "cat/0.png",
        "cat/1.png",
        "cat/2.png",
        "dog/0.png",
        "dog/1.png",
        "dog/2.png",
        "eel/e0.png",
        "eel/e1.png",
    ]
    assert "kitty -> cat" in caplog.text and "all -> ." in caplog.text and "not followed" in caplog.text
    assert "dog/also-cat.png (= cat/0.png)" in caplog.text


def test_an_image_linked_from_test_into_train_is_one_image(tmp_path: Path) -> None:
    import os

    root = tmp_path / "split"
    write_images(root, *(f"train/{c}/{i}.png" for c in ("cat", "dog") for i in range(3)), "test/cat/t.png")
    os.symlink("../../train/cat/0.png", root / "test" / "cat" / "leak.png")
    table = scan_folder(root)
    same = [p for p in table.paths if os.path.realpath(root / p) == os.path.realpath(root / "train/cat/0.png")]
    assert same == ["test/cat/leak.png"]  # once, at its first path in sorted order: never in train and test
    assert len(table) == 7
