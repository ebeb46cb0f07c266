"""Owns the images of a dataset as a columnar `SampleTable`: one path string and two small integers per image.

Images are held as columns, never as one Python object per image: scanning and splitting 200,000 files then costs
little more than listing them (bench/scan.py). Which images a dataset holds is ``layouts.py``'s job, and which
split each goes to is ``splits.py``'s; both hand tables of this module around.
"""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

SPLITS = ("train", "val", "test")
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
