"""Owns the split a run uses: drawn once (``stratified.py``), saved as ``splits.csv``, and read back from it.

Which images a dataset holds, and which splits its folders or label file give, is ``layouts.py``'s and
``label_files.py``'s job.

The split is data, written once: it is computed from (file list, fractions, seed), saved as ``splits.csv`` and
read back on resume, by eval and by every job of a sweep, so all of them see the identical split.
"""

import csv
import os
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path

import numpy as np

from transferlab.data.samples import SPLITS, UNASSIGNED, SampleTable
from transferlab.data.stratified import stratified_split
from transferlab.files import atomic_write_csv

CSV_HEADER = ("path", "class", "split")


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
    folders or label file hold, see ``layouts.py`` and ``label_files.py``) split.

    The class names always come from `found`, so the class indices match the data even when the split is read
    back; the fractions and seed are ignored when `splits_file` is given. `exclude` maps the found paths to those
    to leave out (unreadable images) before the split is drawn. Files `splits_file` lists that no longer exist
    go to `on_missing` (the bad-images policy) and are left out; without it they are an error.
    """
    if splits_file is None:
        table = _without(found, exclude)
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
    return _without(table, exclude)


def _without(table: SampleTable, exclude: Callable[[list[str]], Collection[str]] | None) -> SampleTable:
    """`table` less the paths that `exclude` picks (it records them; see ``bad_images.SkippedImages.watch`` for the
    rule that every class keeps a training image)."""
    if exclude is None:
        return table
    dropped = set(exclude(table.paths.tolist()))
    if not dropped:
        return table
    return table.select(np.fromiter((path not in dropped for path in table.paths), dtype=bool, count=len(table)))


def training_pool(table: SampleTable) -> SampleTable:
    """The images that train or that `stratified_split` may draw val/test images from: a split not yet drawn."""
    return table.select((table.splits == UNASSIGNED) | (table.splits == SPLITS.index("train")))
