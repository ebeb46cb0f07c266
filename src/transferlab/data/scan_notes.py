"""Owns what a scan of a data root meets besides images: the leftover folders it ignored, the folder links it does
not follow (they lead back into the root), and the image files that are links, resolved once the scan is done so
that no image is counted twice (``layouts.scan_folder`` scans; this module keeps the notes and the rules).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class ScanNotes:
    """What one scan of a data root met besides images: leftover folders ignored, folder links not followed (they
    lead back into the root), and the image files that are links, to resolve once the scan is done."""

    real_root: str
    ignored: set[str] = field(default_factory=set)
    links_not_followed: list[str] = field(default_factory=list)
    linked_files: list[str] = field(default_factory=list)  # absolute paths of image files that are symlinks

    def follows(self, entry: os.DirEntry) -> bool:
        """Whether a linked class or split folder is read: only when it leads out of the data root."""
        if not entry.is_symlink():
            return True
        target = os.path.realpath(entry.path)
        inside = os.path.commonpath([target, self.real_root]) in (target, self.real_root)
        if inside:
            self.links_not_followed.append(f"{entry.path} -> {os.readlink(entry.path)}")
        return not inside

    def without_repeats(self, root: Path, by_split: dict) -> dict:
        """`by_split` with every image reached twice (through file links) kept once, at its first sorted path."""
        if self.links_not_followed:
            log.info(
                "%s: folder link(s) %s lead back into the data root: not followed, so that no image is counted twice",
                root,
                self.links_not_followed,
            )
        if not self.linked_files:
            return by_split
        linked = {os.path.realpath(path) for path in self.linked_files}
        first: dict[str, str] = {}
        repeats: dict[str, str] = {}  # a later path -> the first path of the same file
        for rel in sorted(p for classes in by_split.values() for paths in classes.values() for p in paths):
            real = os.path.realpath(root / rel)
            if real in linked:
                if real in first:
                    repeats[rel] = first[real]
                else:
                    first[real] = rel
        if not repeats:
            return by_split
        log.info(
            "%s: %d image(s) reached twice through links, kept once at their first path: %s",
            root,
            len(repeats),
            ", ".join(f"{rel} (= {kept})" for rel, kept in repeats.items()),
        )
        return {
            split: {name: [p for p in paths if p not in repeats] for name, paths in classes.items()}
            for split, classes in by_split.items()
        }
