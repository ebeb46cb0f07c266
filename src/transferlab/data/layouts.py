"""Owns what a folder dataset holds before it is split: the layout of its folders, its images, and the data root.

Two folder layouts are read, decided by the names of the root's top-level folders (`detect_layout`):

- **class folders**: ``root/<class>/**/<image>``; every split is drawn later (``stratified.stratified_split``).
- **split folders**: ``root/<split>/<class>/**/<image>`` where every top-level folder is named as a split, in any
  case: ``train``/``training``; ``val``/``valid``/``validation``/``dev``; ``test``/``testing`` (the Keras and
  TensorFlow layout ``train/`` + ``validation/``). Images keep the split of their folder; a split without a
  folder is drawn from train.

A root whose top-level folders mix split names and other names could mean either, so it is an error, never a
guess: a folder named ``validation`` beside ``cat`` and ``dog`` is not read as a class.

Hidden files and folders (``.git``, ``.ipynb_checkpoints``, macOS's ``._*`` AppleDouble files) and the folders that
archives and file systems leave behind (:data:`LEFTOVER_FOLDERS`: ``__MACOSX``, Synology's ``@eaDir`` thumbnails,
Windows' ``$RECYCLE.BIN`` and ``System Volume Information``) are ignored, named in one log line: never a class, never
a reason for the mixed-layout error, never an image. ``Thumbs.db`` and ``desktop.ini`` are not image names.

Links are resolved, so that no image is counted twice (:class:`ScanNotes`): a class or split folder may be a link
to data stored elsewhere, but a folder link that leads back into the data root (``kitty -> cat``, ``all -> .``) is
not followed; links to folders below a class folder are never followed (a loop cannot hang the scan); and an image
reached twice through file links is one image, kept at its first path in sorted order. Each is named in the log.

A label file (``data.labels_file``, or a pandas DataFrame from Python) lists ``path,label[,split]`` rows instead;
then the folders' names mean nothing (``label_files.py``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from transferlab.data.class_names import canonical_names
from transferlab.data.images import IMAGE_SUFFIXES, is_image_file
from transferlab.data.samples import SPLITS, UNASSIGNED, SampleTable, object_array
from transferlab.data.scan_notes import ScanNotes

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

# Folders that archives and file systems leave beside the data, compared case-folded (hidden ones are skipped too).
LEFTOVER_FOLDERS = frozenset({"__macosx", "@eadir", "$recycle.bin", "system volume information"})

# Folder names (lower case) that mean a split, and the split each means. One table for folders and label files.
SPLIT_NAMES: Mapping[str, str] = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}
LAYOUTS_HELP = (
    "transferlab reads two folder layouts: class folders, root/<class>/<images> (train/val/test are drawn), or "
    "split folders, root/<split>/<class>/<images>, with every top-level folder named train/training, "
    "val/valid/validation/dev or test/testing (any case); or a label file: data.labels_file=<csv> with columns "
    "path,label[,split]."
)


def split_of_name(name: str) -> str | None:
    """The split a folder name or a label file's split value means (``Validation`` → ``val``), else None."""
    return SPLIT_NAMES.get(name.strip().lower())


def detect_layout(root: str | Path, folders: list[str]) -> dict[str, str]:
    """The split folders of a root whose top-level folders are `folders`: ``{split: folder name}``.

    Returns an empty dict for the class-folder layout (no folder is named as a split).

    Raises:
        ValueError: the names mix split folders and other folders, two folders name the same split, or split
            folders lack ``train``. The message names the folders and the accepted layouts.
    """
    named = {folder: split_of_name(folder) for folder in folders}
    splits = {folder: split for folder, split in named.items() if split is not None}
    if not splits:
        return {}
    others = sorted(folder for folder, split in named.items() if split is None)
    if others:
        raise ValueError(
            f"data.root {str(root)!r} mixes split folders {sorted(splits)} with other folders {others}, so it is "
            "not clear whether the split folders are classes or splits. Move the class folders into the split "
            "folders (or rename a class folder whose name is a split name). " + LAYOUTS_HELP
        )
    by_split: dict[str, list[str]] = {}
    for folder, split in splits.items():
        by_split.setdefault(split, []).append(folder)
    twice = {split: sorted(names) for split, names in by_split.items() if len(names) > 1}
    if twice:
        raise ValueError(
            f"data.root {str(root)!r} has several folders for one split: "
            + "; ".join(f"{split}: {names}" for split, names in twice.items())
            + ". Merge them into one folder per split. "
            + LAYOUTS_HELP
        )
    if "train" not in by_split:
        raise ValueError(
            f"data.root {str(root)!r} has split folders {sorted(splits)} but no training folder (train/ or "
            "training/): add one, or point data.root at a folder of class folders. " + LAYOUTS_HELP
        )
    return {split: by_split[split][0] for split in SPLITS if split in by_split}


def scan_folder(root: str | Path, *, merge_case: bool = False) -> SampleTable:
    """Lists the images of a folder dataset in either layout (see the module docstring and `detect_layout`).

    Paths are posix paths relative to root (``validation/cat/1.jpg`` for a split folder, so ``splits.csv`` shows
    which folder each image came from). Hidden files and folders are ignored. Rows are ordered by (split, class,
    path), so the table does not depend on the order in which the file system lists a folder. Class folders whose
    names differ only by case or Unicode form are an error, or one class with ``merge_case`` (see ``class_names.py``).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"data.root {str(root)!r} is not a folder: set data.root to the folder holding the class folders "
            "(or train/, val/, test/ folders of class folders)."
        )
    notes = ScanNotes(os.path.realpath(root))
    ignored = notes.ignored
    top = _subdirs(root, notes)
    if not top and not any(not name.startswith(".") for name in os.listdir(root)):
        raise ValueError(
            f"data.root {str(root)!r} is empty: put one folder per class in it, each holding that class's images."
        )
    split_folders = detect_layout(root, top)
    if split_folders:
        by_split = {
            split: _merged(_scan_classes(root / folder, f"{folder}/", notes), root / folder, merge_case)
            for split, folder in split_folders.items()
        }
        train = split_folders["train"]
        for split, folder in split_folders.items():
            extra = sorted(set(by_split[split]) - set(by_split["train"]))
            if extra:
                raise ValueError(
                    f"{root / folder} has class folders that {root / train} lacks: {extra}. "
                    f"Every class needs training images: add them to {train}/ or remove these folders."
                )
        class_names = sorted(by_split["train"])
        log.info(
            "%s: split folders %s",
            root,
            ", ".join(f"{split}={folder}/" for split, folder in split_folders.items()),
        )
    else:
        by_split = {None: _merged(_scan_classes(root, "", notes), root, merge_case)}
        class_names = sorted(by_split[None])
    if ignored:
        log.info("%s: ignored %s (left by archives and file systems: not classes, not images)", root, sorted(ignored))
    by_split = notes.without_repeats(root, by_split)
    if len(class_names) < 2:
        raise ValueError(
            f"data.root {str(root)!r} has {len(class_names)} class folder(s) {class_names}: "
            "a classifier needs at least 2 classes."
        )
    groups = [
        (UNASSIGNED if split is None else SPLITS.index(split), class_names.index(label), paths)
        for split, classes in by_split.items()
        for label, paths in classes.items()
    ]
    return _table_of_groups(class_names, groups)


def _table_of_groups(class_names: list[str], groups: list[tuple[int, int, list[str]]]) -> SampleTable:
    """A table of (split code, class index, paths) groups, concatenated in the order given."""
    sizes = [len(paths) for _, _, paths in groups]
    return SampleTable(
        class_names,
        object_array(chain.from_iterable(paths for _, _, paths in groups)),
        np.repeat(np.array([label for _, label, _ in groups], dtype=np.int32), sizes),
        np.repeat(np.array([split for split, _, _ in groups], dtype=np.int8), sizes),
    )


def _merged(classes: dict[str, list[str]], folder: Path, merge_case: bool) -> dict[str, list[str]]:
    """`classes` with the folders of one class spelled differently (``Cat/``, ``cat/``) as one entry."""
    counts = {name: len(paths) for name, paths in classes.items()}
    names = canonical_names(counts, source=f"the class folders of {folder}", merge_case=merge_case)
    merged: dict[str, list[str]] = {}
    for name, paths in classes.items():
        merged.setdefault(names[name], []).extend(paths)
    return {name: sorted(paths) for name, paths in merged.items()}


def is_leftover(name: str) -> bool:
    """A hidden file or folder, or one that an archive or a file system leaves behind (see the module docstring)."""
    return name.startswith(".") or name.casefold() in LEFTOVER_FOLDERS


def _subdirs(folder: Path, notes: ScanNotes | None = None) -> list[str]:
    # is_dir() follows symlinks here so that class or split folders may be links to data stored elsewhere.
    with os.scandir(folder) as entries:
        folders = [e.name for e in entries if e.is_dir() and (notes is None or notes.follows(e))]
    if notes is not None:
        notes.ignored.update(name for name in folders if not name.startswith(".") and is_leftover(name))
    return sorted(name for name in folders if not is_leftover(name))


def _scan_classes(folder: Path, prefix: str, notes: ScanNotes) -> dict[str, list[str]]:
    """Maps each class folder of `folder` to the sorted posix paths (starting with `prefix`) of its images."""
    names = _subdirs(folder, notes)
    if not names:
        raise ValueError(
            f"{folder} has no class folders: put the images of each class in a folder named after the class. "
            + LAYOUTS_HELP
        )
    classes = {}
    for name in names:
        paths = image_paths(folder / name, f"{prefix}{name}", notes)
        if not paths:
            raise ValueError(
                f"class folder {folder / name} has no images: add images or remove the folder "
                "(hidden files and non-image extensions are skipped)."
            )
        classes[name] = paths
    return classes


def image_paths(class_dir: Path, rel: str, notes: ScanNotes | None = None) -> list[str]:
    """Sorted posix paths (starting with `rel`) of the images in `class_dir` and its subfolders; the leftover
    folders skipped among them and the image files that are links go into `notes`."""
    ignored = notes.ignored if notes is not None else None
    links = notes.linked_files if notes is not None else []
    found: list[str] = []
    runs = 0  # folders that contributed a sorted run of paths
    pending = [(os.fspath(class_dir), rel)]
    while pending:
        folder, rel_folder = pending.pop()
        subfolders: list[os.DirEntry] = []
        try:
            names = _list_folder(folder, subfolders, links)
        except OSError:  # an entry that cannot be stat-ed (a link loop): list the folder again, entry by entry
            subfolders.clear()
            names = _list_folder_carefully(folder, subfolders, links)
        names.sort()  # the bare names: cheaper to compare than the paths, and sorted runs merge fast below
        found.extend(map(f"{rel_folder}/".__add__, names))
        runs += bool(names)
        # Like os.walk, symlinked subfolders are not followed, so a link loop cannot hang the scan.
        pending.extend((e.path, f"{rel_folder}/{e.name}") for e in subfolders if not is_leftover(e.name))
        if ignored is not None:
            ignored.update(e.name for e in subfolders if not e.name.startswith(".") and is_leftover(e.name))
    if runs > 1:  # images in subfolders too: merge the runs
        found.sort()
    return found


def _list_folder(folder: str, subfolders: list[os.DirEntry], links: list[str]) -> list[str]:
    """Names of the image files in `folder`; appends its subfolders (not links to folders) to `subfolders` and the
    paths of its image files that are links to `links`.

    This is the per-file loop of the scan, so it is one comprehension with `images.has_image_name` inlined
    (a function call per file would cost a fifth of the walk) and the file type read from the directory entry,
    which costs no system call for a regular file.
    """
    with os.scandir(folder) as entries:
        return [
            name
            for entry in entries
            if (
                (name := entry.name)[0] != "."  # names are never empty
                and (name.endswith(IMAGE_SUFFIXES) or name.lower().endswith(IMAGE_SUFFIXES))
                and entry.is_file()  # follows links to files; a folder named x.jpg is not a file
                and (not entry.is_symlink() or _noted(links, entry.path))  # d_type again: no system call
            )
            or (entry.is_dir(follow_symlinks=False) and subfolders.append(entry))  # append returns None: not listed
        ]


def _noted(links: list[str], path: str) -> bool:
    links.append(path)
    return True


def _list_folder_carefully(folder: str, subfolders: list[os.DirEntry], links: list[str]) -> list[str]:
    """`_list_folder` for the rare folder holding an entry whose type cannot be read: such entries are skipped."""
    names = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                subfolders.append(entry)
            elif is_image_file(entry):
                names.append(entry.name)
                if entry.is_symlink():
                    links.append(entry.path)
    return names


def dataset_root(
    root: str | Path | None, *, labels_file: str | Path | pd.DataFrame | None = None, demo_root: str | None = None
) -> Path:
    """The folder a dataset's paths are relative to: `root` when given, else the label file's folder, else the
    demo dataset's folder (so the demo is used only when no root is given).
    """
    if root not in (None, ""):
        return Path(root).expanduser()
    if isinstance(labels_file, str | os.PathLike):
        return Path(labels_file).expanduser().parent
    if labels_file is not None:
        raise ValueError("a labels DataFrame needs root: the folder its relative paths start from")
    if demo_root is not None:
        return Path(demo_root).expanduser()
    raise ValueError(
        "data.root is not set: set data.root=/path/to/images (a folder of class folders, or of train/ val/ test/ "
        "folders), or data.labels_file=/path/to/labels.csv."
    )
