"""Owns drawing the split: each image to train, val or test, stratified per class, or into k stratified folds.

What is drawn is fixed by (file list, fractions, seed) alone, never by the order in which files were listed;
``splits.py`` saves it as ``splits.csv`` so that resume, eval and every job of a sweep read the identical split.
"""

import math
import zlib

import numpy as np

from transferlab.checks import integer, number
from transferlab.data.samples import SPLITS, UNASSIGNED, SampleTable


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
    sizes = [end - start for start, end in zip([0, *ends[:-1]], ends, strict=True)]
    _check_class_sizes(table.class_names, sizes, drawn)
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


def _split_counts(n: int, fractions: dict[str, float]) -> dict[str, int]:
    # floor(x + 0.5) rounds halves up; Python's round() would send 2.5 to 2 but 3.5 to 4.
    return {split: math.floor(n * fraction + 0.5) for split, fraction in fractions.items()}


def _check_class_sizes(class_names: list[str], sizes: list[int], fractions: dict[str, float]) -> None:
    """Every class too small for the fractions named in one error (a class with no pooled image is not drawn)."""
    short = []
    for name, n in zip(class_names, sizes, strict=True):
        counts = _split_counts(n, fractions)
        empty = [split for split, fraction in fractions.items() if fraction > 0 and counts[split] == 0]
        if n and (empty or sum(counts.values()) >= n):
            left = "0 " + " and ".join(empty) if empty else "no training"
            short.append(f"{name!r} ({n}: {left} images)")
    if short:
        settings = ", ".join(f"data.{split}_fraction={fraction}" for split, fraction in fractions.items())
        raise ValueError(
            f"{len(short)} class(es) have too few images for {settings}, which would leave them: "
            f"{', '.join(short)}. Lower the fraction(s), add images to these classes, or give the splits "
            "(train/ val/ test/ folders, or a split column in data.labels_file)."
        )


def _draw_splits(label: str, n: int, fractions: dict[str, float], seed: int) -> np.ndarray:
    """Split codes for the `n` sorted images of class `label`: train, or one of the splits of `fractions`."""
    counts = _split_counts(n, fractions)
    # The class name (by a stable hash) is part of the seed so each class's shuffle ignores the other classes.
    rng = np.random.default_rng([seed, zlib.crc32(label.encode(errors="surrogateescape"))])
    shuffled = rng.permutation(n)
    codes = np.full(n, SPLITS.index("train"), dtype=np.int8)
    start = 0
    for split, count in counts.items():  # the first shuffled images go to val, the next to test
        codes[shuffled[start : start + count]] = SPLITS.index(split)
        start += count
    return codes
