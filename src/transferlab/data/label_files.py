"""Owns label files: a table of ``path,label[,split]`` rows (``data.labels_file``, or a pandas DataFrame from
Python) read as the images a dataset holds, instead of class folders.

With a label file the folders' names mean nothing; split names mean what they mean for folders (``layouts.py``'s
`SPLIT_NAMES`). Which of the listed files exist is reported, not decided here: ``data.bad_images`` decides.
"""

from __future__ import annotations

import logging
import os
import unicodedata
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from transferlab.data.class_names import canonical_names
from transferlab.data.layouts import image_paths, split_of_name
from transferlab.data.samples import SampleTable

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

LABEL_COLUMNS = ("path", "label")


def read_labels(
    labels: str | Path | pd.DataFrame, root: str | Path, *, merge_case: bool = False
) -> tuple[SampleTable, dict[str, str]]:
    """The images a label table lists, and those of its files that do not exist (path → reason).

    Args:
        labels: a CSV file (``data.labels_file``) or a pandas DataFrame with columns ``path`` (relative to
            `root`, or absolute) and ``label`` (one class per row), and optionally ``split`` (``train``/``val``/
            ``test`` or a synonym of `SPLIT_NAMES`; empty: drawn by the stratified split). Other columns are
            ignored. Class names are the sorted unique labels.
        root: the folder relative paths start from.
        merge_case: labels that differ only by case or Unicode form are one class (see ``class_names.py``);
            false: they are an error.

    Raises:
        FileNotFoundError: the CSV file does not exist.
        ValueError: a malformed table (a missing column, an empty path or label, a path listed twice, an unknown
            split); the message names the rows.
    """
    import pandas as pd  # here, not at import: pandas costs a second of start-up that only label files need

    source = "the labels DataFrame" if isinstance(labels, pd.DataFrame) else f"data.labels_file {str(labels)!r}"
    if isinstance(labels, pd.DataFrame):
        frame = labels.astype({column: str for column in labels.columns if column in (*LABEL_COLUMNS, "split")})
        frame = frame.fillna("")
    else:
        path = Path(labels).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{source} does not exist: point it at a CSV file with columns path,label[,split].")
        frame = _read_csv(path, source)
    missing_columns = [column for column in LABEL_COLUMNS if column not in frame.columns]
    if missing_columns:
        raise ValueError(
            f"{source} has columns {list(frame.columns)} but needs {list(LABEL_COLUMNS)} (and optionally split): "
            "rename its columns."
        )
    paths = _as_on_disk([_normalise(p) for p in frame["path"].tolist()], Path(root), source)
    labels_ = [label.strip() for label in frame["label"].tolist()]
    splits = frame["split"].tolist() if "split" in frame.columns else [""] * len(paths)
    rows = [row + 2 for row in range(len(paths))]  # as a spreadsheet numbers them: the header is row 1
    _check_cells(source, rows, paths, labels_, splits)
    classes = canonical_names(Counter(labels_), source=source, merge_case=merge_case)
    labels_ = [classes[label] for label in labels_]
    table = SampleTable.from_rows(
        (path, label, split_of_name(split) if split.strip() else None)
        for path, label, split in zip(paths, labels_, splits, strict=True)
    )
    root = Path(root)
    missing = {p: f"listed in {source} but missing" for p in paths if not os.path.isfile(os.path.join(root, p))}
    _warn_unlisted(root, set(paths), source)
    return table, missing


def _read_csv(path: Path, source: str) -> pd.DataFrame:
    """A label CSV as spreadsheets export it: a UTF-8 byte-order mark stripped (Excel's "CSV UTF-8"), the separator
    sniffed among ``,`` ``;`` (European Excel) tab and ``|``, quoted headers unquoted, and pandas' unnamed index
    column (``to_csv`` without ``index=False``) dropped with a log line."""
    import csv

    import pandas as pd

    with path.open(encoding="utf-8-sig", errors="surrogateescape") as file:
        sample = file.read(64 * 1024)
    try:
        separator = csv.Sniffer().sniff(sample.split("\n", 1)[0] or ",", delimiters=",;\t|").delimiter
    except csv.Error:  # one column, or nothing to tell by: comma, and the column check below explains
        separator = ","
    # dtype=str and no NA parsing: a class named "NA" or "1" stays that string. surrogateescape: file names
    # that are not valid UTF-8 (legal on Linux) round-trip byte for byte, as in splits.csv.
    frame = pd.read_csv(
        path, sep=separator, dtype=str, keep_default_na=False, encoding="utf-8-sig", encoding_errors="surrogateescape"
    )
    first = frame.columns[0] if len(frame.columns) else None
    unnamed = first is not None and (first == "" or first.startswith("Unnamed: 0"))
    if unnamed and frame[first].tolist() == [str(i) for i in range(len(frame))]:
        log.info("%s: dropped its unnamed first column (a pandas index: 0, 1, 2, …)", source)
        frame = frame.drop(columns=first)
    return frame


def _as_on_disk(paths: list[str], root: Path, source: str) -> list[str]:
    """Each listed path that does not exist read as the file it names in another spelling, where exactly that one
    exists: backslashes as folder separators (a file written on Windows; POSIX only, on Windows they already
    separate), or the name in the other Unicode normalisation form (macOS writes names decomposed, NFD; a CSV
    typed elsewhere holds them composed, NFC). One log line says how many were read so."""
    fixed, changed = [], Counter()
    for path in paths:
        if path and not os.path.exists(os.path.join(root, path)):
            for why, spelling in _spellings(path):
                if spelling != path and os.path.exists(os.path.join(root, spelling)):
                    path = spelling
                    changed[why] += 1
                    break
        fixed.append(path)
    for why, count in changed.items():
        log.info("%s: read %d path(s) %s", source, count, why)
    return fixed


def _spellings(path: str) -> Iterator[tuple[str, str]]:
    windows = os.sep != "\\" and "\\" in path
    posix = Path(path.replace("\\", "/")).as_posix() if windows else path
    if windows:
        yield "with backslashes as folder separators (a file written on Windows)", posix
    for form in ("NFC", "NFD"):
        yield f"in Unicode form {form}, as the files are named on disk", unicodedata.normalize(form, path)
        if windows:
            yield f"with backslashes as separators and in Unicode form {form}", unicodedata.normalize(form, posix)


def _normalise(path: str) -> str:
    """A path as the table keeps it: posix separators, no ``./`` or doubled separators; absolute stays absolute."""
    return Path(path.strip()).as_posix() if path.strip() else ""


def _check_cells(source: str, rows: list[int], paths: list[str], labels: list[str], splits: list[str]) -> None:
    problems = []
    empty_path = [row for row, path in zip(rows, paths, strict=True) if not path]
    if empty_path:
        problems.append(f"empty path in row(s) {empty_path[:20]}")
    empty_label = [row for row, label in zip(rows, labels, strict=True) if not label]
    if empty_label:
        problems.append(f"empty label in row(s) {empty_label[:20]}")
    unknown = [(row, s) for row, s in zip(rows, splits, strict=True) if s.strip() and split_of_name(s) is None]
    if unknown:
        problems.append(
            f"unknown split in row(s) {unknown[:20]} (use train, val or test, a synonym of them, or leave it empty "
            "to have the row split by data.val_fraction/test_fraction)"
        )
    first_row: dict[str, int] = {}
    twice = []
    for row, path in zip(rows, paths, strict=True):
        if path and path in first_row:
            twice.append(f"{path!r} (rows {first_row[path]} and {row})")
        first_row.setdefault(path, row)
    if twice:
        problems.append(f"{len(twice)} path(s) listed more than once: {', '.join(twice[:10])}")
    if problems:
        raise ValueError(f"{source} (rows numbered as in a spreadsheet, header = row 1): " + "; ".join(problems))
    if len(set(labels)) < 2:
        raise ValueError(f"{source} has {len(set(labels))} class(es) {sorted(set(labels))}: a classifier needs 2+.")


def _warn_unlisted(root: Path, listed: set[str], source: str) -> None:
    """Logs the images under `root` that the label table does not list: they are not used, which may be a mistake."""
    if not root.is_dir():
        return
    found = [p.removeprefix("/") for p in image_paths(root, "")]
    unlisted = [p for p in found if p not in listed]
    if unlisted:
        log.warning(
            "%d image(s) under %s are not listed in %s and are not used, e.g. %s",
            len(unlisted),
            root,
            source,
            unlisted[:5],
        )
