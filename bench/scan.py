"""Benchmark 4, scan and split of a large folder: transferlab's scan (layout detection, image filter, canonical
sort) and stratified split of 200,000 files vs a bare ``os.walk`` listing the same names, next to the scan of
torchvision's ``ImageFolder`` (the notebook baseline, which lists but does not split), with peak Python memory.

    python bench/scan.py [--quick] [--files 200000]

The files are empty (``data.verify`` resolves to ``none`` under the default ``bad_images=skip``, so no file is
opened), in 10 class folders. All run on a warm directory cache, interleaved round by round so that they share the
machine's state; the median of the rounds is printed. Target: scan + split ≤ 1.5× the walk.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

from _common import parse_args, table
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

from transferlab.data.layouts import _list_folder, scan_folder
from transferlab.data.splits import load_or_make_splits


def walk(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


def image_folder(root: Path) -> int:
    """What ``torchvision.datasets.ImageFolder(root)`` does before it can return an image."""
    return len(make_dataset(str(root), find_classes(str(root))[1], extensions=IMG_EXTENSIONS))


def listing(root: Path) -> int:
    """The scan's own walk: directory entries read and filtered to image files, not yet sorted (a breakdown row)."""
    return sum(len(_list_folder(str(folder), [], [])) for folder in sorted(root.iterdir()))


def scan(root: Path) -> int:
    return len(scan_folder(root))


def scan_and_split(root: Path) -> int:
    return len(
        load_or_make_splits(scan_folder(root), root, val_fraction=0.1, test_fraction=0.1, seed=0, splits_file=None)
    )


CONTENDERS = {
    "os.walk (names only)": walk,
    "torchvision ImageFolder scan (no split)": image_folder,
    "transferlab listing + image filter, unsorted": listing,
    "transferlab scan (+ sort by path, table)": scan,
    "transferlab scan + stratified split": scan_and_split,
}


def peak_bytes(function, root: Path) -> int:
    tracemalloc.start()  # a separate pass: tracing slows Python allocations down several-fold
    function(root)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    args = parse_args(__doc__.split("\n")[0], files=(int, 200_000, "number of files"))
    files, rounds = (5_000, 1) if args.quick else (args.files, 7)
    seconds: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for k in range(10):
            folder = root / f"class_{k}"
            folder.mkdir()
            for i in range(k, files, 10):
                (folder / f"IMG_{i:07d}.jpg").touch()
        walk(root)  # warm the directory cache for all
        for _ in range(rounds):
            for name, function in CONTENDERS.items():
                started = time.perf_counter()
                found = function(root)
                seconds[name].append(time.perf_counter() - started)
                assert found == files, (name, found)
        peaks = {name: peak_bytes(function, root) for name, function in CONTENDERS.items()}
    median = {name: statistics.median(values) for name, values in seconds.items()}
    walk_s = median["os.walk (names only)"]
    rows = [
        (name, f"{s:.3f} s  {s / files * 1e6:5.2f} µs/file  {s / walk_s:4.2f}x walk  {peaks[name] / 2**20:5.1f} MiB")
        for name, s in median.items()
    ]
    ratio = median["transferlab scan + stratified split"] / walk_s
    rows.append(("ratio scan+split / walk", f"{ratio:.2f}x  (target <= 1.5x)"))
    rows.append(
        (
            "ratio scan+split / ImageFolder scan",
            f"{median['transferlab scan + stratified split'] / median['torchvision ImageFolder scan (no split)']:.2f}x",
        )
    )
    table(
        f"Scan and split of {files:,} files in 10 class folders (warm cache, median of {rounds} rounds, peak memory)",
        rows,
    )


if __name__ == "__main__":
    main()
