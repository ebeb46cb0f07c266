"""Owns one dataset's record of the images left out under ``data.bad_images``: what the ``data.verify`` check, a
label table or a saved split (files that do not exist) and the loaders found unreadable, as it is found.

Each file is logged once and appended to ``skipped_images.csv`` in the run dir; under ``bad_images=error`` the first
finding stops instead. The policy itself (the checks, the error, the CSV format) is ``bad_images.py``'s.
"""

from __future__ import annotations

import logging
from pathlib import Path

from transferlab.bad_images import Unreadable, bad_images_error, find_bad_images, write_skipped_csv
from transferlab.rundir import BAD_IMAGES_FILE

log = logging.getLogger(__name__)


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
        for path, reason in new.items():
            log.warning("Skipping unreadable image %s: %s", self.root / path, reason)
        if self.skipped_file is not None:
            write_skipped_csv(self.skipped_file, new)
        log.warning(
            "%d unreadable image(s) left out so far%s",
            len(self.skipped),
            f"; listed in {self.skipped_file}" if self.skipped_file else "",
        )

    def on_unreadable(self, bad: list[Unreadable]) -> None:
        """What the loaders call with the files of a batch that could not be read."""
        self.record({item.path: item.reason for item in bad})
