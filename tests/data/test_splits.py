"""Tests for transferlab.data.splits and the folder scan of transferlab.data.layouts: stratified split, splits.csv."""

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from transferlab.data import splits
from transferlab.data.layouts import scan_folder
from transferlab.data.samples import SampleTable
from transferlab.data.splits import load_or_make_splits, read_splits_csv, write_splits_csv
from transferlab.data.stratified import stratified_split


def touch(root: Path, *rel_paths: str) -> None:
    # is_image_file looks at names only, so empty files stand in for images.
    for rel in rel_paths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def class_items(sizes: dict[str, int]) -> list[tuple[str, str, None]]:
    return [(f"{label}/{i:03d}.png", label, None) for label, n in sizes.items() for i in range(n)]


def split(rows, **kwargs) -> SampleTable:
    return stratified_split(SampleTable.from_rows(rows), **kwargs)


def split_counts(samples: SampleTable) -> Counter:
    return Counter((s.label, s.split) for s in samples)


def by_label(samples: SampleTable, label: str) -> list[tuple]:
    return [s for s in samples if s.label == label]


def test_layout_a_walks_nested_folders_and_skips_hidden_and_non_images(tmp_path):
    touch(
        tmp_path,
        "cat/a.png",
        "cat/sub/deep/b.JPG",
        "cat/c.Jpeg",
        "cat/.hidden.png",
        "cat/.cache/d.png",
        "cat/notes.txt",
        "cat/batch.jpg/e.png",  # a folder named like an image is a folder
        "dog/x.webp",
        ".git/objects/e.png",
        "readme.md",
    )
    table = scan_folder(tmp_path)
    assert table.class_names == ["cat", "dog"]
    assert list(table) == [
        ("cat/a.png", "cat", None),
        ("cat/batch.jpg/e.png", "cat", None),
        ("cat/c.Jpeg", "cat", None),
        ("cat/sub/deep/b.JPG", "cat", None),
        ("dog/x.webp", "dog", None),
    ]


def test_layout_b_keeps_given_splits_and_prefixes_paths(tmp_path):
    touch(tmp_path, "train/cat/a.png", "train/dog/b.png", "train/dog/n/c.png", "test/cat/d.png", ".DS/x.png")
    table = scan_folder(tmp_path)
    assert table.class_names == ["cat", "dog"]
    assert list(table) == [
        ("train/cat/a.png", "cat", "train"),
        ("train/dog/b.png", "dog", "train"),
        ("train/dog/n/c.png", "dog", "train"),
        ("test/cat/d.png", "cat", "test"),
    ]


def test_layout_b_rejects_a_class_missing_from_train(tmp_path):
    touch(tmp_path, "train/cat/a.png", "train/dog/b.png", "val/cat/c.png", "val/bird/d.png")
    with pytest.raises(ValueError, match="bird"):
        scan_folder(tmp_path)


def test_scan_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data\.root .*missing"):
        scan_folder(tmp_path / "missing")
    touch(tmp_path, "loose.png")
    with pytest.raises(ValueError, match="no class folders"):
        scan_folder(tmp_path)
    touch(tmp_path, "cat/a.png", "empty/notes.txt")
    with pytest.raises(ValueError, match="empty has no images"):
        scan_folder(tmp_path)
    (tmp_path / "empty/notes.txt").unlink()
    (tmp_path / "empty").rmdir()
    with pytest.raises(ValueError, match="at least 2 classes"):
        scan_folder(tmp_path)


@pytest.mark.parametrize(
    ("n", "expected"),
    # (val, test) for val_fraction=0.2, test_fraction=0.1: round(n * fraction), halves up
    [(10, (2, 1)), (23, (5, 2)), (7, (1, 1)), (25, (5, 3))],
)
def test_per_class_counts_are_the_rounded_fractions(n, expected):
    samples = split(class_items({"a": n, "b": 40}), val_fraction=0.2, test_fraction=0.1, seed=0)
    counts = split_counts(samples)
    assert (counts["a", "val"], counts["a", "test"], counts["a", "train"]) == (*expected, n - sum(expected))
    assert (counts["b", "val"], counts["b", "test"], counts["b", "train"]) == (8, 4, 28)
    assert sorted(s.path for s in samples) == sorted(p for p, _, _ in class_items({"a": n, "b": 40}))


def test_split_is_deterministic_sorted_and_independent_of_other_classes():
    kwargs = {"val_fraction": 0.2, "test_fraction": 0.1, "seed": 3}
    first = split(class_items({"a": 10, "b": 23}), **kwargs)
    assert split(reversed(class_items({"a": 10, "b": 23})), **kwargs) == first
    order = {"train": 0, "val": 1, "test": 2}
    assert list(first) == sorted(first, key=lambda s: (order[s.split], s.label, s.path))
    with_c = split(class_items({"a": 10, "b": 23, "c": 7}), **kwargs)
    for label in ("a", "b"):
        assert by_label(with_c, label) == by_label(first, label)


def test_another_seed_gives_another_split():
    items = class_items({"a": 30, "b": 30})
    one = split(items, val_fraction=0.2, test_fraction=0.1, seed=0)
    two = split(items, val_fraction=0.2, test_fraction=0.1, seed=1)
    assert split_counts(one) == split_counts(two)
    assert {s.path for s in one if s.split == "val"} != {s.path for s in two if s.split == "val"}


def test_too_small_class_error_names_class_and_count():
    with pytest.raises(ValueError, match=r"1 class\(es\) .*'tiny' \(3: 0 val images\).*Lower the fraction"):
        split(class_items({"big": 50, "tiny": 3}), val_fraction=0.1, test_fraction=0.0, seed=0)
    with pytest.raises(ValueError, match=r"'pair' \(2: no training images\)"):
        split(class_items({"big": 50, "pair": 2}), val_fraction=0.5, test_fraction=0.3, seed=0)


def test_too_small_classes_are_all_named_in_one_error():
    sizes = {"big": 200} | {f"rare{i:03d}": 2 + i % 3 for i in range(120)}
    with pytest.raises(ValueError, match=r"^120 class\(es\) have too few images") as error:
        split(class_items(sizes), val_fraction=0.1, test_fraction=0.1, seed=0)
    assert all(f"'rare{i:03d}' (" in str(error.value) for i in range(120))
    assert "'big'" not in str(error.value)


@pytest.mark.parametrize(
    ("val", "test", "key"),
    [(1.0, 0.1, "data.val_fraction"), (-0.1, 0.1, "data.val_fraction"), (0.1, 1.5, "data.test_fraction")],
)
def test_fraction_out_of_range_names_the_key(val, test, key):
    with pytest.raises(ValueError, match=key):
        split(class_items({"a": 10, "b": 10}), val_fraction=val, test_fraction=test, seed=0)


def test_fractions_summing_to_one_are_rejected():
    with pytest.raises(ValueError, match=r"data\.val_fraction=0\.5 \+ data\.test_fraction=0\.5"):
        split(class_items({"a": 10, "b": 10}), val_fraction=0.5, test_fraction=0.5, seed=0)


def test_zero_fraction_gives_an_empty_split():
    samples = split(class_items({"a": 10, "b": 5}), val_fraction=0.2, test_fraction=0.0, seed=0)
    assert Counter(s.split for s in samples) == {"train": 12, "val": 3}


def test_given_splits_are_kept_and_only_missing_ones_drawn_from_train():
    items = [(f"train/{c}/{i}.png", c, "train") for c in "ab" for i in range(10)]
    items += [(f"val/{c}/{i}.png", c, "val") for c in "ab" for i in range(2)]
    samples = split(items, val_fraction=0.3, test_fraction=0.2, seed=0)
    val = [s for s in samples if s.split == "val"]
    test = [s for s in samples if s.split == "test"]
    assert {s.path for s in val} == {p for p, _, split in items if split == "val"}
    assert len(test) == 4
    assert all(s.path.startswith("train/") for s in test)

    items += [(f"test/{c}/{i}.png", c, "test") for c in "ab" for i in range(3)]
    samples = split(items, val_fraction=0.3, test_fraction=0.2, seed=0)
    assert [(s.path, s.label, s.split) for s in samples] == sorted(
        items, key=lambda item: (("train", "val", "test").index(item[2]), item[1], item[0])
    )


def test_csv_round_trip(tmp_path):
    touch(tmp_path, *(f"data/{c}/{i}.png" for c in ("cat", "dog") for i in range(10)))
    samples = stratified_split(scan_folder(tmp_path / "data"), val_fraction=0.2, test_fraction=0.1, seed=0)
    csv_path = tmp_path / "run" / "splits.csv"
    write_splits_csv(csv_path, samples)
    assert csv_path.read_text().splitlines()[0] == "path,class,split"
    assert read_splits_csv(csv_path, tmp_path / "data") == samples


def test_csv_read_errors(tmp_path):
    touch(tmp_path, "cat/a.png")
    with pytest.raises(FileNotFoundError, match=r"data\.splits_file"):
        read_splits_csv(tmp_path / "nope.csv", tmp_path)
    csv_path = tmp_path / "splits.csv"
    csv_path.write_text("file,label,split\ncat/a.png,cat,train\n")
    with pytest.raises(ValueError, match="header"):
        read_splits_csv(csv_path, tmp_path)
    csv_path.write_text("path,class,split\ncat/a.png,cat,holdout\n")
    with pytest.raises(ValueError, match="line 2"):
        read_splits_csv(csv_path, tmp_path)
    rows = ["cat/a.png,cat,train"] + [f"cat/gone{i:02d}.png,cat,val" for i in range(12)]
    csv_path.write_text("\n".join(["path,class,split", *rows]) + "\n")
    # Files deleted since the split was written are not the file's fault: reading it works, and the caller
    # (the datamodule, eval) applies data.bad_images to what missing_files finds.
    table = read_splits_csv(csv_path, tmp_path)
    assert sorted(splits.missing_files(tmp_path, table.paths)) == [f"cat/gone{i:02d}.png" for i in range(12)]
    with pytest.raises(FileNotFoundError, match="12 file") as error:
        load_or_make_splits(
            SampleTable.from_rows([("cat/a.png", "cat", None)]),
            tmp_path,
            splits_file=csv_path,
            val_fraction=0.1,
            test_fraction=0.1,
            seed=0,
        )
    message = str(error.value)
    assert str(csv_path) in message and "data.root" in message and "data.splits_file=null" in message
    assert "gone09" in message and "gone10" not in message  # at most 10 listed


def test_atomic_write_leaves_no_temp_file_and_keeps_old_file_on_failure(tmp_path, monkeypatch):
    csv_path = tmp_path / "splits.csv"
    write_splits_csv(csv_path, SampleTable.from_rows([("a/1.png", "a", "train")]))
    write_splits_csv(csv_path, SampleTable.from_rows([("b/1.png", "b", "val")]))
    assert os.listdir(tmp_path) == ["splits.csv"]
    assert csv_path.read_text() == "path,class,split\nb/1.png,b,val\n"

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(splits.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_splits_csv(csv_path, SampleTable.from_rows([("c/1.png", "c", "test")]))
    assert os.listdir(tmp_path) == ["splits.csv"]
    assert csv_path.read_text() == "path,class,split\nb/1.png,b,val\n"


def test_load_or_make_splits_scans_or_reads(tmp_path):
    root = tmp_path / "data"
    touch(root, *(f"{c}/{i}.png" for c in ("cat", "dog") for i in range(10)))
    kwargs = {"val_fraction": 0.2, "test_fraction": 0.1, "seed": 0}
    samples = load_or_make_splits(scan_folder(root), root, splits_file=None, **kwargs)
    assert samples.class_names == ["cat", "dog"]
    assert Counter(s.split for s in samples) == {"train": 14, "val": 4, "test": 2}

    csv_path = tmp_path / "splits.csv"
    subset = samples.select(np.arange(len(samples)) < 5)
    write_splits_csv(csv_path, subset)
    # The csv wins over fractions and seed; the class list still comes from the folders.
    assert (
        load_or_make_splits(scan_folder(root), root, splits_file=csv_path, val_fraction=0.5, test_fraction=0.0, seed=9)
        == subset
    )

    touch(root, "cat/extra.png")
    write_splits_csv(csv_path, SampleTable.from_rows([*subset, ("cat/extra.png", "bird", "train")]))
    with pytest.raises(ValueError, match=r"'bird' on line 2"):
        load_or_make_splits(scan_folder(root), root, splits_file=csv_path, **kwargs)


def test_table_rows_come_out_in_canonical_order_whatever_the_input_order():
    rows = [("b/2.png", "b", "val"), ("a/9.png", "a", "train"), ("b/1.png", "b", "train"), ("a/1.png", "a", "train")]
    table = SampleTable.from_rows(rows)
    assert list(table) == [("a/1.png", "a", "train"), ("a/9.png", "a", "train"), ("b/1.png", "b", "train"), rows[0]]
    assert table.part("train").class_counts() == [2, 1]
    assert table.select(table.labels == 1) == SampleTable.from_rows([rows[2], rows[0]], ["a", "b"])


def test_rows_without_a_split_are_divided_while_given_splits_stay():
    # A label file whose split column is filled for some rows only: those keep their split, the others are divided
    # per class by both fractions, as class folders are.
    given = [("given/a.png", "a", "val"), ("given/b.png", "b", "test"), ("given/c.png", "b", "train")]
    rows = given + class_items({"a": 10, "b": 10})
    table = split(rows, val_fraction=0.2, test_fraction=0.1, seed=0)
    kept = {s.path: s.split for s in table if s.path.startswith("given/")}
    assert kept == {"given/a.png": "val", "given/b.png": "test", "given/c.png": "train"}
    drawn = split(class_items({"a": 10, "b": 10}), val_fraction=0.2, test_fraction=0.1, seed=0)
    assert {s.path: s.split for s in table if not s.path.startswith("given/")} == {s.path: s.split for s in drawn}


def test_default_split_is_pinned():
    # The split of a dataset must never change under a user's feet (saved splits, published comparisons):
    # this is what the split code drew before folds were added.
    rows = [(f"{c}/{i:02d}.png", c, None) for c in ("a", "b", "c") for i in range(9)]
    table = stratified_split(SampleTable.from_rows(rows), val_fraction=0.2, test_fraction=0.2, seed=7)
    held_out = {s.path: s.split for s in table if s.split != "train"}
    val = ["a/01.png", "a/06.png", "b/00.png", "b/04.png", "c/00.png", "c/05.png"]
    test = ["a/03.png", "a/07.png", "b/02.png", "b/08.png", "c/06.png", "c/07.png"]
    assert held_out == {**dict.fromkeys(val, "val"), **dict.fromkeys(test, "test")}


def test_folds_share_the_test_split_and_partition_the_rest_stratified():
    rows = class_items({"a": 25, "b": 15, "c": 10})
    tables = [split(rows, val_fraction=0.1, test_fraction=0.2, seed=3, folds=5, fold=i) for i in range(5)]
    plain_test = set(split(rows, val_fraction=0.0, test_fraction=0.2, seed=3).part("test").paths)
    for table in tables:
        assert set(table.part("test").paths) == plain_test  # the same test split for every fold
        # Each fold holds a fifth of each class's 20, 12 and 8 non-test images, to within one image.
        assert all(abs(got - n / 5) < 1 for got, n in zip(table.part("val").class_counts(), [20, 12, 8], strict=True))
    val_sets = [set(t.part("val").paths) for t in tables]
    non_test = {p for p, _, _ in rows} - plain_test
    assert set().union(*val_sets) == non_test  # every non-test image validates exactly once
    assert sum(len(v) for v in val_sets) == len(non_test)
    assert split(rows, val_fraction=0.1, test_fraction=0.2, seed=3, folds=5, fold=2) == tables[2]  # reproducible


def test_fold_errors_name_the_key():
    rows = class_items({"a": 6, "b": 6})
    with pytest.raises(ValueError, match=r"data\.fold=5 must be an integer in 0\.\.4"):
        split(rows, val_fraction=0.1, test_fraction=0.0, seed=0, folds=5, fold=5)
    with pytest.raises(ValueError, match=r"data\.folds=1 must be an integer >= 2"):
        split(rows, val_fraction=0.1, test_fraction=0.0, seed=0, folds=1)
    with pytest.raises(ValueError, match=r"at least 8 training images per class; a \(6\), b \(6\)"):
        split(rows, val_fraction=0.1, test_fraction=0.0, seed=0, folds=8)
    given = [("train/a/1.png", "a", "train"), ("val/a/2.png", "a", "val")]
    with pytest.raises(ValueError, match="gives a validation split"):
        split(given, val_fraction=0.1, test_fraction=0.0, seed=0, folds=2)
