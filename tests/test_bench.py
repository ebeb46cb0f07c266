"""The benchmarks in bench/ still run: each one in --quick mode, checked for its figures and ratio (not its speed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"

EXPECTED = {
    "overhead.py": "ratio transferlab / hand-written",
    "cached_features.py": "per-epoch ratio uncached / cached",
    "loader.py": "ratio full / reduced decode",
    "scan.py": "ratio scan+split / walk",
    "backbones.py": "| `resnet50` |",  # a row of the README's backbone table: parameters, img/s
    "gpu.py": "ratio end to end / loader alone",  # or its skip message on machines without CUDA
}
# red_team.py: tests/reliability/test_red_team.py runs it whole; same_outputs.py (a refactoring check, not a
# benchmark): tests/test_same_outputs.py checks how it compares files.
OWN_TEST = {"all.py", "red_team.py", "same_outputs.py"}


@pytest.mark.slow
def test_every_benchmark_runs_in_quick_mode(tmp_path: Path) -> None:
    assert sorted(p.name for p in BENCH.glob("[!_]*.py") if p.name not in OWN_TEST) == sorted(EXPECTED)
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONWARNINGS": "ignore"}
    # One process for all (bench/all.py): most of each benchmark's quick run would be importing torch and Lightning.
    result = subprocess.run(
        [sys.executable, str(BENCH / "all.py"), "--quick"],
        cwd=BENCH.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"bench/all.py --quick failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    sections = result.stdout.split("\n=== bench/")[1:]
    assert [section.split()[0] for section in sections] == list(EXPECTED)
    for section in sections:
        name = section.split()[0]
        if name == "gpu.py" and "skipped, no CUDA device" in section:
            continue
        ratio_line = next((line for line in section.splitlines() if EXPECTED[name] in line), None)
        assert ratio_line is not None, f"bench/{name} printed no ratio:\n{section[-3000:]}"
        assert any(ch.isdigit() for ch in ratio_line.split(EXPECTED[name])[1]), ratio_line
