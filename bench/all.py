"""Runs every benchmark in one process (one import of torch and Lightning): ``python bench/all.py [--quick]``."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

BENCHMARKS = ("overhead.py", "cached_features.py", "loader.py", "scan.py", "backbones.py", "gpu.py")  # gpu.py last: it
# exits at once without CUDA, ending this process
# red_team.py is not a speed benchmark: tests/reliability/test_red_team.py runs it whole.


def main() -> None:
    here = Path(__file__).resolve().parent
    options = sys.argv[1:]
    for name in BENCHMARKS:
        print(f"\n=== bench/{name} {' '.join(options)}", flush=True)
        sys.argv = [str(here / name), *options]
        runpy.run_path(str(here / name), run_name="__main__")


if __name__ == "__main__":
    main()
