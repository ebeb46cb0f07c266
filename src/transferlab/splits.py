"""Owns the split of a folder dataset: scanning its layout, the stratified train/val/test split, splits.csv.

The split is data, written once: it is computed from (file list, fractions, seed), saved as ``splits.csv`` and
read back on resume, by eval and by every job of a sweep, so all of them see the identical split.
"""

import csv
import io
import math
import os
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from transferlab.files import atomic_write_text
from transferlab.images import is_image_file

SPLITS = ("train", "val", "test")
CSV_HEADER = ("path", "class", "split")

# (posix path relative to the data root, class name, split given by a train/val/test folder or None)
Item = tuple[str, str, str | None]


@dataclass(frozen=True)
class Sample:
    path: str  # posix path relative to the data root
    label: str  # class name
    split: str  # "train" | "val" | "test"


class Scan(NamedTuple):
    """What `scan_folder` found; unpacks as ``class_names, items = scan_folder(root)``."""

    class_names: list[str]  # sorted class folder names
    items: list[Item]


def scan_folder(root: str | Path) -> Scan:
    """Lists the images of a folder dataset in one of two layouts.

    Layout A: ``root/<class>/**/<image>``; every item's split is None (drawn later by `stratified_split`).
    Layout B: ``root/train/<class>/**/<image>`` plus optional ``val/`` and ``test/`` of the same shape; items
    keep the split of their folder. B is detected when ``root/train`` exists and every non-hidden folder of
    root is train, val or test. Hidden files and folders are ignored; items are sorted (deterministic).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"data.root {str(root)!r} is not a folder: set data.root to the folder holding the class folders "
            "(or train/, val/, test/ folders of class folders)."
        )
    top = _subdirs(root)
    if not top and not any(not name.startswith(".") for name in os.listdir(root)):
        raise ValueError(
            f"data.root {str(root)!r} is empty: put one folder per class in it, each holding that class's images."
        )
    if "train" in top and set(top) <= set(SPLITS):
        given = [split for split in SPLITS if split in top]
        by_split = {split: _scan_classes(root / split, f"{split}/") for split in given}
        for split in given[1:]:
            extra = sorted(set(by_split[split]) - set(by_split["train"]))
            if extra:
                raise ValueError(
                    f"{root / split} has class folders that {root / 'train'} lacks: {extra}. "
                    "Every class needs training images: add them to train/ or remove these folders."
                )
        class_names = sorted(by_split["train"])
        items = [(path, label, split) for split in given for label, paths in by_split[split].items() for path in paths]
    else:
        classes = _scan_classes(root, "")
        class_names = sorted(classes)
        items = [(path, label, None) for label, paths in classes.items() for path in paths]
    if len(class_names) < 2:
        raise ValueError(
            f"data.root {str(root)!r} has {len(class_names)} class folder(s) {class_names}: "
            "a classifier needs at least 2 classes."
        )
    return Scan(class_names, items)


def _subdirs(folder: Path) -> list[str]:
    # is_dir() follows symlinks here so that class or split folders may be links to data stored elsewhere.
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if not e.name.startswith(".") and e.is_dir())


def _scan_classes(folder: Path, prefix: str) -> dict[str, list[str]]:
    """Maps each class folder of `folder` to the sorted posix paths (starting with `prefix`) of its images."""
    names = _subdirs(folder)
    if not names:
        raise ValueError(
            f"{folder} has no class folders: put the images of each class in a folder named after the class."
        )
    classes = {}
    for name in names:
        paths = _image_paths(folder / name, f"{prefix}{name}")
        if not paths:
            raise ValueError(
                f"class folder {folder / name} has no images: add images or remove the folder "
                "(hidden files and non-image extensions are skipped)."
            )
        classes[name] = paths
    return classes


def _image_paths(class_dir: Path, rel: str) -> list[str]:
    # One scandir per folder and no stat beyond the directory entry, so a 200k-file dataset scans fast.
    found = []
    pending = [(str(class_dir), rel)]
    while pending:
        folder, rel_folder = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                rel_path = f"{rel_folder}/{entry.name}"
                # Like os.walk, symlinked subfolders are not followed, so a link loop cannot hang the scan.
                if entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, rel_path))
                elif is_image_file(entry):
                    found.append(rel_path)
    found.sort()
    return found


def stratified_split(items: Iterable[Item], *, val_fraction: float, test_fraction: float, seed: int) -> list[Sample]:
    """Assigns every item to train, val or test, per class.

    Items whose split is given (layout B) keep it. Each split not given as a folder is drawn from each class's
    training items: ``round(n * fraction)`` images (halves round up), chosen by a shuffle seeded from
    ``(seed, class name)`` alone, so adding or removing a class never changes the split of the others.

    Returns:
        Samples sorted by (split in train/val/test order, label, path).
    """
    _check_fractions(val_fraction, test_fraction)
    if seed < 0:
        raise ValueError(f"data.split_seed={seed} must be a non-negative integer.")
    items = list(items)
    given = {split for _, _, split in items if split is not None}
    unknown = sorted(given - set(SPLITS))
    if unknown:
        raise ValueError(f"unknown split name(s) {unknown}: splits are {list(SPLITS)}.")
    fractions = {"val": val_fraction, "test": test_fraction}
    drawn = {split: fraction for split, fraction in fractions.items() if split not in given}

    pools: dict[str, list[str]] = defaultdict(list)
    samples = []
    for path, label, split in items:
        if split in (None, "train"):
            pools[label].append(path)
        else:
            samples.append(Sample(path, label, split))
    for label, paths in pools.items():
        samples.extend(_split_class(label, sorted(paths), drawn, seed))
    order = {split: i for i, split in enumerate(SPLITS)}
    samples.sort(key=lambda s: (order[s.split], s.label, s.path))
    return samples


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    for key, fraction in (("data.val_fraction", val_fraction), ("data.test_fraction", test_fraction)):
        if not 0 <= fraction < 1:
            raise ValueError(f"{key}={fraction} must be in [0, 1).")
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"data.val_fraction={val_fraction} + data.test_fraction={test_fraction} must be below 1 "
            "so that training images remain."
        )


def _split_class(label: str, paths: list[str], fractions: dict[str, float], seed: int) -> list[Sample]:
    n = len(paths)
    # floor(x + 0.5) rounds halves up; Python's round() would send 2.5 to 2 but 3.5 to 4.
    counts = {split: math.floor(n * fraction + 0.5) for split, fraction in fractions.items()}
    empty = [split for split, fraction in fractions.items() if fraction > 0 and counts[split] == 0]
    if empty or sum(counts.values()) >= n:
        short = f"0 {' and '.join(empty)} images" if empty else "no training images"
        settings = ", ".join(f"data.{split}_fraction={fraction}" for split, fraction in fractions.items())
        raise ValueError(
            f"class {label!r} has {n} images, so {settings} would leave it {short}: "
            "lower the fraction(s) or add images to the class."
        )
    # The class name (by a stable hash) is part of the seed so each class's shuffle ignores the other classes.
    rng = np.random.default_rng([seed, zlib.crc32(label.encode())])
    shuffled = [paths[i] for i in rng.permutation(n)]
    samples = []
    start = 0
    for split, count in counts.items():
        samples.extend(Sample(path, label, split) for path in shuffled[start : start + count])
        start += count
    samples.extend(Sample(path, label, "train") for path in shuffled[start:])
    return samples


def write_splits_csv(path: str | Path, samples: Iterable[Sample]) -> None:
    """Writes ``path,class,split`` rows atomically: a killed run leaves the old file or the new one, whole."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows((s.path, s.label, s.split) for s in samples)
    # surrogateescape: file names that are not valid UTF-8 (legal on Linux) round-trip byte for byte.
    atomic_write_text(Path(path), buffer.getvalue(), errors="surrogateescape")


def read_splits_csv(path: str | Path, root: str | Path) -> list[Sample]:
    """Reads a splits.csv and checks that every file it lists exists under `root`."""
    path, root = Path(path), Path(root)
    if not path.is_file():
        raise FileNotFoundError(
            f"data.splits_file {str(path)!r} does not exist: point it at the splits.csv of an earlier run "
            "or set data.splits_file=null to compute the split."
        )
    samples = []
    with path.open(newline="", encoding="utf-8", errors="surrogateescape") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != list(CSV_HEADER):
            raise ValueError(f"{path}: header is {header}, expected {','.join(CSV_HEADER)}.")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != 3 or not row[0] or not row[1] or row[2] not in SPLITS:
                raise ValueError(
                    f"{path}, line {line}: expected path,class,split with split one of {list(SPLITS)}, got {row}."
                )
            samples.append(Sample(*row))
    if not samples:
        raise ValueError(f"{path} lists no images: delete it or set data.splits_file=null to recompute.")
    duplicates = sorted(p for p, count in Counter(s.path for s in samples).items() if count > 1)
    if duplicates:
        raise ValueError(f"{path} lists {len(duplicates)} path(s) twice, e.g. {duplicates[:10]}: fix the file.")
    missing = [s.path for s in samples if not os.path.isfile(os.path.join(root, s.path))]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} file(s) listed in {path} are missing under data.root {str(root)!r}, "
            f"e.g. {missing[:10]}: fix data.root, or set data.splits_file=null to compute a new split."
        )
    return samples


def load_or_make_splits(
    root: str | Path,
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    splits_file: str | Path | None,
    exclude: Callable[[list[str]], Collection[str]] | None = None,
) -> tuple[list[str], list[Sample]]:
    """Returns (class_names, samples): read from `splits_file` when given, else scanned and split.

    The class names always come from the folders under `root`, so the class indices match the data even when
    the split is read back; the fractions and seed are ignored when `splits_file` is given. `exclude` maps the
    found paths to those to leave out (unreadable images) before the split is drawn.
    """
    if splits_file is None:
        class_names, items = scan_folder(root)
        if exclude is not None:
            dropped = set(exclude([path for path, _, _ in items]))
            items = [item for item in items if item[0] not in dropped]
            _check_every_class_kept(root, class_names, {label for _, label, split in items if split in (None, "train")})
        return class_names, stratified_split(items, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    samples = read_splits_csv(splits_file, root)
    class_names = scan_folder(root).class_names
    if exclude is not None:
        dropped = set(exclude([s.path for s in samples]))
        samples = [s for s in samples if s.path not in dropped]
        _check_every_class_kept(root, class_names, {s.label for s in samples if s.split == "train"})
    unknown = sorted({s.label for s in samples} - set(class_names))
    if unknown:
        raise ValueError(
            f"data.splits_file {str(splits_file)!r} names classes {unknown} that are not class folders of "
            f"data.root {str(root)!r} ({class_names}): fix data.root or set data.splits_file=null."
        )
    return class_names, samples


def _check_every_class_kept(root: str | Path, class_names: list[str], kept: set[str]) -> None:
    lost = [name for name in class_names if name not in kept]
    if lost:
        raise ValueError(
            f"class folder(s) {lost} of data.root {str(root)!r} have no readable training images left after "
            "leaving out the unreadable ones (see the log): add readable images or remove the folder(s)."
        )
