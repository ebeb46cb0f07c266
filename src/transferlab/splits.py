"""Owns the split of a dataset: the images as a `SampleTable`, the stratified train/val/test split, splits.csv.

Which images a dataset holds, and which splits its folders or label file give, is ``layouts.py``'s job.

The split is data, written once: it is computed from (file list, fractions, seed), saved as ``splits.csv`` and
read back on resume, by eval and by every job of a sweep, so all of them see the identical split.

Images are held as columns (`SampleTable`: one path string and two small integers per image), never as one Python
object per image: scanning and splitting 200,000 files then costs little more than listing them (bench/scan.py).
"""

import csv
import math
import os
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from transferlab.checks import integer, number
from transferlab.files import atomic_write_csv

SPLITS = ("train", "val", "test")
CSV_HEADER = ("path", "class", "split")
UNASSIGNED = -1  # split code of an image whose split `stratified_split` has yet to draw (layout A)


class Sample(NamedTuple):
    """One row of a `SampleTable`, for code that reads a few rows; bulk code uses the table's columns."""

    path: str  # posix path relative to the data root
    label: str  # class name
    split: str | None  # "train" | "val" | "test", or None before the split is drawn


@dataclass(frozen=True, eq=False)
class SampleTable:
    """The images of a folder dataset as three columns of equal length, in canonical order.

    Canonical order: by split code (`UNASSIGNED` first, then train, val, test), class index, path. Every
    constructor here keeps it, so a table never depends on the order in which a file system lists a folder, and
    the images of one class and split are one sorted run that needs no further sorting.

    Attributes:
        class_names: the dataset's classes; ``labels`` index into it.
        paths: object array of posix paths relative to the data root.
        labels: class index of each path.
        splits: index into `SPLITS` of each path, or `UNASSIGNED`.
    """

    class_names: list[str]
    paths: np.ndarray
    labels: np.ndarray
    splits: np.ndarray

    def __post_init__(self) -> None:
        if not len(self.paths) == len(self.labels) == len(self.splits):
            raise ValueError("paths, labels and splits of a SampleTable must have the same length")

    @classmethod
    def from_rows(
        cls, rows: Iterable[tuple[str, str, str | None]], class_names: Sequence[str] | None = None
    ) -> "SampleTable":
        """A table of ``(path, class name, split name or None)`` rows; classes default to the sorted names found."""
        if class_names is None:
            rows = list(rows)
            class_names = sorted({label for _, label, _ in rows})
        index = {name: i for i, name in enumerate(class_names)}
        codes = {None: UNASSIGNED} | {split: i for i, split in enumerate(SPLITS)}
        coded = sorted((codes[split], index[label], path) for path, label, split in rows)
        return cls(
            list(class_names),
            object_array(path for _, _, path in coded),
            np.array([label for _, label, _ in coded], dtype=np.int32),
            np.array([split for split, _, _ in coded], dtype=np.int8),
        )

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[Sample]:
        names = self.class_names
        for path, label, split in zip(self.paths, self.labels.tolist(), self.splits.tolist(), strict=True):
            yield Sample(path, names[label], _split_name(split))

    def __getitem__(self, index: int) -> Sample:
        return Sample(self.paths[index], self.class_names[self.labels[index]], _split_name(int(self.splits[index])))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SampleTable):
            return NotImplemented
        return (
            self.class_names == other.class_names
            and np.array_equal(self.paths, other.paths)
            and np.array_equal(self.labels, other.labels)
            and np.array_equal(self.splits, other.splits)
        )

    def select(self, mask: np.ndarray) -> "SampleTable":
        """The rows where the boolean `mask` is true, in order."""
        return SampleTable(self.class_names, self.paths[mask], self.labels[mask], self.splits[mask])

    def part(self, split: str) -> "SampleTable":
        """The rows of one split ("train", "val" or "test")."""
        return self.select(self.splits == SPLITS.index(split))

    def label_names(self) -> list[str]:
        return np.asarray(self.class_names, dtype=object)[self.labels].tolist()

    def class_counts(self) -> list[int]:
        """Number of images of each class, in `class_names` order."""
        return np.bincount(self.labels, minlength=len(self.class_names)).tolist()


def _split_name(code: int) -> str | None:
    return None if code == UNASSIGNED else SPLITS[code]


def object_array(strings: Iterable[str]) -> np.ndarray:
    # An object array of the (shared) str objects: selecting and reordering rows copies pointers, not text.
    return np.array(list(strings), dtype=object)


def stratified_split(
    table: SampleTable,
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    folds: int | None = None,
    fold: int = 0,
) -> SampleTable:
    """Assigns every image to train, val or test, per class.

    Images whose split is given (split folders, a label file's split column) keep it. Images without one are
    divided per class by both fractions; when every image has a given split, each split that none has is drawn
    from each class's training images. A class of n images gives ``round(n * fraction)`` images (halves round
    up), chosen by a shuffle of the class's sorted paths seeded from ``(seed, class name)`` alone, so adding or
    removing a class never changes the split of the others, and the order in which the images were listed never
    matters.

    With ``folds=K``, the test split is drawn as above (``val_fraction`` unused), and the other images are divided
    into K stratified folds (scikit-learn's ``StratifiedKFold``, shuffled with `seed`): fold ``fold`` is the
    validation split, the rest train. Every fold of a cross-validation shares the same test split.

    Returns:
        The table ordered by (split in train/val/test order, class, path).
    """
    check_split_settings(val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    if folds is not None:
        return _fold_split(table, test_fraction=test_fraction, seed=seed, folds=folds, fold=fold)
    unassigned = table.splits == UNASSIGNED
    if unassigned.any():
        # Images without a given split (class folders, or label-file rows with an empty split): each class's
        # are divided by both fractions; images with a given split keep it.
        pooled = unassigned
        drawn = {"val": val_fraction, "test": test_fraction}
    else:
        # Split folders or a full split column: the splits that none of them gives are drawn from train.
        given = {SPLITS[code] for code in np.unique(table.splits).tolist()}
        pooled = table.splits == SPLITS.index("train")
        drawn = {
            split: fraction
            for split, fraction in (("val", val_fraction), ("test", test_fraction))
            if split not in given
        }
    # In canonical order the pooled images of each class are one sorted run: rows[start:end] for the class.
    rows = np.flatnonzero(pooled)
    ends = np.cumsum(np.bincount(table.labels[rows], minlength=len(table.class_names))).tolist()
    splits = table.splits.copy()
    for label, (start, end) in enumerate(zip([0, *ends[:-1]], ends, strict=True)):
        if end > start:
            splits[rows[start:end]] = _draw_splits(table.class_names[label], end - start, drawn, seed)
    # A stable sort by (split, class) keeps each class's paths in their sorted order: canonical order again.
    order = np.lexsort((table.labels, splits))
    return SampleTable(table.class_names, table.paths[order], table.labels[order], splits[order])


def _fold_split(table: SampleTable, *, test_fraction: float, seed: int, folds: int, fold: int) -> SampleTable:
    from sklearn.model_selection import StratifiedKFold  # here: scikit-learn is a second of start-up

    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"data.folds={folds!r} must be an integer >= 2 (or null for one train/val split)")
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < folds:
        raise ValueError(f"data.fold={fold!r} must be an integer in 0..{folds - 1} (data.folds={folds})")
    if (table.splits == SPLITS.index("val")).any():
        raise ValueError(
            "data.folds is set, but the data gives a validation split (a val/ folder, or val rows in the label "
            "file's split column): folds draw validation from the training images; drop one of the two."
        )
    table = stratified_split(table, val_fraction=0.0, test_fraction=test_fraction, seed=seed)
    rows = np.flatnonzero(table.splits == SPLITS.index("train"))
    counts = np.bincount(table.labels[rows], minlength=len(table.class_names))
    short = [
        f"{name} ({count})" for name, count in zip(table.class_names, counts.tolist(), strict=True) if count < folds
    ]
    if short:
        raise ValueError(
            f"data.folds={folds} needs at least {folds} training images per class; {', '.join(short)} have fewer: "
            "lower data.folds or add images."
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    _, val_rows = list(splitter.split(np.zeros(len(rows)), table.labels[rows]))[fold]
    splits = table.splits.copy()
    splits[rows[val_rows]] = SPLITS.index("val")
    order = np.lexsort((table.labels, splits))  # stable: each class's paths stay sorted (canonical order)
    return SampleTable(table.class_names, table.paths[order], table.labels[order], splits[order])


def check_split_settings(*, val_fraction: float, test_fraction: float, seed: int) -> None:
    """The rules of ``data.val_fraction``, ``data.test_fraction`` and ``data.split_seed`` (config validation calls
    this too)."""
    for key, fraction in (("data.val_fraction", val_fraction), ("data.test_fraction", test_fraction)):
        number(key, fraction, low=0, high=1, high_open=True)
    integer("data.split_seed", seed, low=0)
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"data.val_fraction={val_fraction} + data.test_fraction={test_fraction} must be below 1 "
            "so that training images remain."
        )


def _draw_splits(label: str, n: int, fractions: dict[str, float], seed: int) -> np.ndarray:
    """Split codes for the `n` sorted images of class `label`: train, or one of the splits of `fractions`."""
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
    rng = np.random.default_rng([seed, zlib.crc32(label.encode(errors="surrogateescape"))])
    shuffled = rng.permutation(n)
    codes = np.full(n, SPLITS.index("train"), dtype=np.int8)
    start = 0
    for split, count in counts.items():  # the first shuffled images go to val, the next to test
        codes[shuffled[start : start + count]] = SPLITS.index(split)
        start += count
    return codes


def write_splits_csv(path: str | Path, samples: SampleTable) -> None:
    """Writes ``path,class,split`` rows atomically: a killed run leaves the old file or the new one, whole."""
    split_names = np.array([*SPLITS, ""], dtype=object)  # UNASSIGNED (-1) indexes the empty name
    rows = zip(samples.paths, samples.label_names(), split_names[samples.splits], strict=True)
    atomic_write_csv(Path(path), CSV_HEADER, rows)


def read_splits_csv(path: str | Path, root: str | Path, class_names: Sequence[str] | None = None) -> SampleTable:
    """Reads a splits.csv (one written by a run, or edited by hand), checking it line by line.

    `class_names`: the classes the table indexes (those of the dataset); a class of the file outside them is an
    error. Default: the sorted classes the file names. Whether the files still exist is the caller's question
    (`missing_files`): a file deleted since the split was written meets ``data.bad_images``, not an error here.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: a wrong header, a malformed row, an unknown split, a path listed twice, a class unknown to
            the dataset or without any training image; the message names the line.
    """
    path, root = Path(path), Path(root)
    if not path.is_file():
        raise FileNotFoundError(
            f"data.splits_file {str(path)!r} does not exist: point it at the splits.csv of an earlier run "
            "or set data.splits_file=null to compute the split."
        )
    rows, lines = [], {}
    with path.open(newline="", encoding="utf-8", errors="surrogateescape") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != list(CSV_HEADER):
            raise ValueError(f"{path}: header is {header}, expected {','.join(CSV_HEADER)}.")
        for row in reader:
            if not row:
                continue
            if len(row) != 3 or not row[0] or not row[1] or row[2] not in SPLITS:
                raise ValueError(
                    f"{path}, line {reader.line_num}: expected path,class,split with split one of {list(SPLITS)}, "
                    f"got {row}: fix the line, or set data.splits_file=null to compute a new split."
                )
            if row[0] in lines:
                raise ValueError(
                    f"{path}, line {reader.line_num}: {row[0]!r} is listed again (first on line {lines[row[0]]}): "
                    "keep one of the two lines."
                )
            lines[row[0]] = reader.line_num
            rows.append(tuple(row))
    if not rows:
        raise ValueError(f"{path} lists no images: delete it or set data.splits_file=null to recompute.")
    if class_names is not None:
        unknown = {label: lines[p] for p, label, _ in reversed(rows) if label not in class_names}
        if unknown:
            raise ValueError(
                f"data.splits_file {str(path)!r} names classes that data.root {str(root)!r} lacks ("
                + ", ".join(f"{label!r} on line {line}" for label, line in sorted(unknown.items()))
                + f"; its classes: {list(class_names)}): fix the file or data.root, or set data.splits_file=null."
            )
    untrained = sorted({label for _, label, _ in rows} - {label for _, label, split in rows if split == "train"})
    if untrained:
        raise ValueError(
            f"{path}: class(es) {untrained} have no train row, so the model could never learn them: give each "
            "class training images in the file, or set data.splits_file=null to compute a new split."
        )
    return SampleTable.from_rows(rows, class_names)


def missing_files(root: str | Path, paths: Iterable[str]) -> dict[str, str]:
    """The `paths` (relative to `root`) that are not files any more, each with the reason for the skipped list."""
    return {
        p: "no longer exists (deleted since the split was written)"
        for p in paths
        if not os.path.isfile(os.path.join(root, p))
    }


def load_or_make_splits(
    found: SampleTable,
    root: str | Path,
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    splits_file: str | Path | None,
    exclude: Callable[[list[str]], Collection[str]] | None = None,
    folds: int | None = None,
    fold: int = 0,
    on_missing: Callable[[dict[str, str]], None] | None = None,
) -> SampleTable:
    """Every image with its split: read from `splits_file` when given, else `found` (the images the dataset's
    folders or label file hold, see ``layouts.py``) split.

    The class names always come from `found`, so the class indices match the data even when the split is read
    back; the fractions and seed are ignored when `splits_file` is given. `exclude` maps the found paths to those
    to leave out (unreadable images) before the split is drawn. Files `splits_file` lists that no longer exist
    go to `on_missing` (the bad-images policy) and are left out; without it they are an error.
    """
    if splits_file is None:
        table = _without(found, exclude, root)
        return stratified_split(
            table, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed, folds=folds, fold=fold
        )
    table = read_splits_csv(splits_file, root, found.class_names)
    missing = missing_files(root, table.paths)
    if missing:
        if on_missing is None:
            raise FileNotFoundError(
                f"{len(missing)} file(s) listed in {splits_file} are missing under data.root {str(root)!r}, e.g. "
                f"{list(missing)[:10]}: fix data.root, or set data.splits_file=null to compute a new split."
            )
        on_missing(missing)  # raises under data.bad_images=error; records them under skip
        table = table.select(np.fromiter((p not in missing for p in table.paths), dtype=bool, count=len(table)))
    return _without(table, exclude, root)


def _without(
    table: SampleTable, exclude: Callable[[list[str]], Collection[str]] | None, root: str | Path
) -> SampleTable:
    """`table` less the paths that `exclude` picks; every class must keep at least one training image."""
    if exclude is None:
        return table
    dropped = set(exclude(table.paths.tolist()))
    if not dropped:
        return table
    table = table.select(np.fromiter((path not in dropped for path in table.paths), dtype=bool, count=len(table)))
    counts = table.select(_training_pool(table)).class_counts()
    lost = [name for name, count in zip(table.class_names, counts, strict=True) if count == 0]
    if lost:
        raise ValueError(
            f"class(es) {lost} of data.root {str(root)!r} have no readable training images left after "
            "leaving out the unreadable or missing ones (see the log and skipped_images.csv): add readable images "
            "or remove the class."
        )
    return table


def _training_pool(table: SampleTable) -> np.ndarray:
    """Mask of the images that train or that `stratified_split` may draw val/test images from."""
    return (table.splits == UNASSIGNED) | (table.splits == SPLITS.index("train"))
