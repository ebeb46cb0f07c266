"""Benchmark 4, scan and split of a large folder: transferlab's scan (layout detection, image filter, sorting) and
stratified split of 200,000 files vs a bare ``os.walk`` listing the same names, with peak Python memory of each.

    python bench/scan.py [--quick] [--files 200000]

The files are empty (``data.verify`` resolves to ``none`` under the default ``bad_images=skip``, so no file is
opened), in 10 class folders. Both sides run on a warm directory cache, median of 3. Target: ≤ 1.5× the walk.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

from _common import parse_args, table

from transferlab.splits import load_or_make_splits


def walk(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


def scan_and_split(root: Path) -> int:
    _, samples = load_or_make_splits(root, val_fraction=0.1, test_fraction=0.1, seed=0, splits_file=None)
    return len(samples)


def measure(function, root: Path, repeats: int) -> tuple[float, int, int]:
    """(median seconds, peak traced bytes, result)."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = function(root)
        seconds.append(time.perf_counter() - started)
    tracemalloc.start()  # a separate pass: tracing slows Python allocations down several-fold
    function(root)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return statistics.median(seconds), peak, result


def main() -> None:
    args = parse_args(__doc__.split("\n")[0], files=(int, 200_000, "number of files"))
    files, repeats = (5_000, 1) if args.quick else (args.files, 3)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for k in range(10):
            folder = root / f"class_{k}"
            folder.mkdir()
            for i in range(k, files, 10):
                (folder / f"IMG_{i:07d}.jpg").touch()
        walk(root)  # warm the directory cache for both sides
        walk_s, walk_peak, found = measure(walk, root, repeats)
        scan_s, scan_peak, kept = measure(scan_and_split, root, repeats)
    assert found == kept == files, (found, kept)
    table(
        f"Scan and split of {files:,} files in 10 class folders (warm cache, median of {repeats})",
        [
            ("os.walk (names only)", f"{walk_s:.3f} s  ({walk_s / files * 1e6:.2f} µs/file)"),
            ("scan + stratified split", f"{scan_s:.3f} s  ({scan_s / files * 1e6:.2f} µs/file)"),
            ("peak Python memory walk / scan+split", f"{walk_peak / 2**20:.1f} / {scan_peak / 2**20:.1f} MiB"),
            ("ratio scan+split / walk", f"{scan_s / walk_s:.2f}x  (target <= 1.5x)"),
            ("memory per file (scan + split)", f"{scan_peak / files:.0f} bytes"),
        ],
    )


if __name__ == "__main__":
    main()
