"""The bad-images policy: finding unreadable image files before training, keeping them out of batches, and one
dataset's record of the files left out (:class:`SkippedImages`).

``data.bad_images`` says what happens to a file that cannot be read as an image: ``skip`` leaves it out, lists it
in ``skipped_images.csv`` in the run dir and goes on; ``error`` stops with every such file named. ``data.verify``
says how hard files are checked before training: ``none`` (names only), ``header`` (Pillow reads each header)
or ``full`` (every file decoded); ``auto`` is ``header`` under ``error`` (so that it can list every bad file before
training) and ``none`` under ``skip`` (so that a scan stays a directory walk). A file that passes the check and
fails later, when a loader reads it (cut short after its header, deleted, truncated mid-run), meets the same
policy there: skipped from its batch, or an error naming it.

Whatever is left out, every class keeps at least one readable training image, or the run stops naming the class
and what happened to its files (:meth:`SkippedImages.watch`): a class the model cannot learn would otherwise be
trained and scored as if it were there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from torch.utils.data import DataLoader, default_collate

from transferlab.data.images import check_image
from transferlab.data.samples import SampleTable
from transferlab.files import atomic_write_csv, read_csv_rows
from transferlab.runs.layout import BAD_IMAGES_FILE, SKIPPED_FILE

log = logging.getLogger(__name__)

POLICIES = ("skip", "error")
VERIFY_LEVELS = ("auto", "none", "header", "full")
LISTED_IN_MESSAGE = 50
EXAMPLES_PER_CLASS = 3
SKIPPED_HEADER = ("path", "reason")


class Unreadable(NamedTuple):
    """What a dataset returns instead of a sample when its file cannot be read under ``bad_images=skip``."""

    path: str  # relative to the data root
    reason: str


def resolve_verify(bad_images: str, verify: str) -> str:
    """Checks both settings and returns the verify level in effect (``auto`` resolved)."""
    if bad_images not in POLICIES:
        raise ValueError(f"data.bad_images={bad_images!r} is not a policy; choose one of: {', '.join(POLICIES)}")
    if verify not in VERIFY_LEVELS:
        raise ValueError(f"data.verify={verify!r} is not a check level; choose one of: {', '.join(VERIFY_LEVELS)}")
    if verify == "auto":
        return "header" if bad_images == "error" else "none"
    return verify


def find_bad_images(root: Path, paths: Iterable[str], *, full: bool) -> dict[str, str]:
    """Maps each of `paths` (relative to `root`) that cannot be read as an image to the reason, in path order."""
    bad = {}
    for path in paths:
        reason = check_image(os.path.join(root, path), full=full)
        if reason is not None:
            bad[path] = reason
    return dict(sorted(bad.items()))


def bad_images_error(root: Path, bad: Mapping[str, str], listing_file: Path | None = None) -> ValueError:
    """The error of ``bad_images=error``: every bad file named, or the first `LISTED_IN_MESSAGE` and the rest in
    `listing_file` (``bad_images.csv`` in the run dir), so that no bad file goes unnamed."""
    shown = dict(list(bad.items())[:LISTED_IN_MESSAGE]) if listing_file is not None else bad
    listing = "\n".join(f"  {path}: {reason}" for path, reason in shown.items())
    if len(shown) < len(bad):
        atomic_write_csv(listing_file, SKIPPED_HEADER, sorted(bad.items()))
        listing += f"\n  … and {len(bad) - len(shown)} more: all {len(bad)} are listed in {listing_file}"
    return ValueError(
        f"{len(bad)} file(s) under data.root {str(root)!r} cannot be read as images:\n{listing}\n"
        "Fix or remove them, or set data.bad_images=skip to train without them "
        f"(they are then listed in {SKIPPED_FILE} in the run dir)."
    )


def read_skipped_csv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    return {row["path"]: row["reason"] for row in read_csv_rows(path)}


def write_skipped_csv(path: Path, skipped: Mapping[str, str]) -> None:
    """Writes ``path,reason`` rows atomically, keeping the rows a previous attempt of this run found."""
    merged = {**read_skipped_csv(path), **skipped}
    atomic_write_csv(path, SKIPPED_HEADER, sorted(merged.items()))


def collate_readable(batch: list[Any]) -> tuple[Any, list[Unreadable]]:
    """``default_collate`` over the readable samples, plus the unreadable ones to report; None when none is left."""
    bad = [sample for sample in batch if isinstance(sample, Unreadable)]
    good = [sample for sample in batch if not isinstance(sample, Unreadable)]
    return (default_collate(good) if good else None), bad


class SkippingDataLoader(DataLoader):
    """A DataLoader whose batches never hold an unreadable file (see :class:`Unreadable`).

    Its collate function drops them and the iterator, which runs in the main process, reports them to
    ``on_unreadable`` and skips a batch that has nothing left. Doing this in the loader, rather than failing in
    a worker, is what keeps the workers alive: a worker only ever returns values.

    With ``keep_empty`` (the training loader) a batch with nothing left is yielded as None, which the training
    step skips: the epoch keeps its number of steps, so that Lightning still runs the epoch's validation and
    checkpoints after its last batch (a loader that yields fewer batches than its length ends the epoch early,
    without them). Elsewhere such a batch is left out.

    Under DDP a batch with *every* file unreadable is skipped on one rank only; DDP does not allow that. Use
    ``data.verify=header`` or ``full`` there so that such files never enter the split.
    """

    def __init__(
        self,
        *args: Any,
        on_unreadable: Callable[[list[Unreadable]], None] | None = None,
        keep_empty: bool = False,
        **kwargs: Any,
    ):
        kwargs.setdefault("collate_fn", collate_readable)
        super().__init__(*args, **kwargs)
        self.on_unreadable = on_unreadable
        self.keep_empty = keep_empty

    def __iter__(self) -> Iterator[Any]:
        for batch, bad in super().__iter__():
            if bad and self.on_unreadable is not None:
                self.on_unreadable(bad)
            if batch is not None or self.keep_empty:
                yield batch


class SkippedImages:
    """The images of the dataset under `root` left out so far, and what ``data.bad_images`` does with more.

    Args:
        root: the data root the paths are relative to.
        bad_images: ``skip`` or ``error``.
        verify: the resolved ``data.verify`` level (``none``, ``header`` or ``full``).
        skipped_file: where skipped files are listed (``skipped_images.csv`` in the run dir); None: only logged.
    """

    def __init__(self, root: Path, *, bad_images: str, verify: str, skipped_file: Path | None) -> None:
        self.root = root
        self.bad_images = bad_images
        self.verify = verify
        self.skipped_file = skipped_file
        self.skipped: dict[str, str] = {}  # path relative to root -> reason, found by the scan or by a loader
        self._class_of: dict[str, str] = {}  # each watched training path -> its class
        self._readable: dict[str, int] = {}  # each watched class -> its training paths not left out
        self._checked: set[str] = set()  # classes whose training files' headers were checked (verify=none)

    def watch(self, training: SampleTable) -> None:
        """From now on, stop as soon as a class of `training` (the images that may train) has none left readable.

        Raises at once if one has none already (all its files missing or found unreadable); later, when a loader
        leaves out the last one (``data.verify=none`` finds unreadable files only while training).
        """
        self._class_of = dict(zip(training.paths.tolist(), training.label_names(), strict=True))
        self._readable = dict.fromkeys(training.class_names, 0)
        for path, name in self._class_of.items():
            self._readable[name] += path not in self.skipped
        self._check_classes()

    def on_missing(self, missing: dict[str, str]) -> None:
        """Listed files that do not exist (a label table's; a saved split's, deleted since): ``data.bad_images``
        decides."""
        if self.bad_images == "error":
            raise bad_images_error(self.root, missing, self.listing_file())
        self.record(missing)

    def listing_file(self) -> Path | None:
        """Where ``bad_images=error`` lists every bad file when there are too many for its message."""
        return None if self.skipped_file is None else self.skipped_file.with_name(BAD_IMAGES_FILE)

    def find_bad_images(self, paths: list[str]) -> list[str]:
        """The paths to leave out of the split: unreadable files under ``bad_images=skip``; raises under ``error``."""
        if self.verify == "none":
            return []
        bad = find_bad_images(self.root, paths, full=self.verify == "full")
        if bad and self.bad_images == "error":
            raise bad_images_error(self.root, bad, self.listing_file())
        self.record(bad)
        return list(bad)

    def record(self, found: dict[str, str]) -> None:
        new = {path: reason for path, reason in found.items() if path not in self.skipped}
        if not new:
            return
        self.skipped.update(new)
        for path in new:
            if path in self._class_of:
                self._readable[self._class_of[path]] -= 1
        for path, reason in new.items():
            log.warning("Skipping unreadable image %s: %s", self.root / path, reason)
        if self.skipped_file is not None:
            write_skipped_csv(self.skipped_file, new)
        log.warning(
            "%d unreadable image(s) left out so far%s",
            len(self.skipped),
            f"; listed in {self.skipped_file}" if self.skipped_file else "",
        )
        self._check_classes()
        self._check_rest_of_classes({self._class_of[path] for path in new if path in self._class_of})

    def _check_rest_of_classes(self, names: set[str]) -> None:
        """Under ``verify=none`` a loader finds a class's bad files one at a time, and an epoch (its last batch
        dropped) may never reach them all: the first bad file of a class has the rest of its training files'
        headers checked at once (about 34 µs each), so that a class of nothing but bad files stops the run in its
        first epoch, and a class with one bad download costs no more than that check."""
        unchecked = names - self._checked if self.verify == "none" else set()
        if not unchecked:
            return
        self._checked |= unchecked
        rest = [path for path, name in self._class_of.items() if name in unchecked and path not in self.skipped]
        self.record(find_bad_images(self.root, rest, full=False))

    def _check_classes(self) -> None:
        empty = [name for name, count in self._readable.items() if count == 0]
        if not empty:
            return
        lines = []
        for name in empty:
            paths = [path for path, label in self._class_of.items() if label == name]
            if not paths:
                lines.append(f"  {name!r}: no training image at all")
                continue
            examples = "; ".join(f"{path}: {self.skipped[path]}" for path in paths[:EXAMPLES_PER_CLASS])
            more = f"; … {len(paths) - EXAMPLES_PER_CLASS} more" if len(paths) > EXAMPLES_PER_CLASS else ""
            lines.append(f"  {name!r}: all {len(paths)} training file(s) left out ({examples}{more})")
        listed = f" (all listed in {self.skipped_file})" if self.skipped_file is not None else ""
        raise ValueError(
            f"{len(empty)} class(es) of data.root {str(self.root)!r} have no usable training image{listed}:\n"
            + "\n".join(lines)
            + "\nA model cannot learn such a class: fix the paths or files, or remove the class from the label "
            "file or the folder."
        )

    def on_unreadable(self, bad: list[Unreadable]) -> None:
        """What the loaders call with the files of a batch that could not be read."""
        self.record({item.path: item.reason for item in bad})
