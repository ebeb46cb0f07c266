"""The red-team table (bench/red_team.py) as a test: every hostile input through the real entry points, and the
suite fails on any CRASH or HANG. The table is printed (pytest -s, or the failure message, shows it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "red_team.py"


def test_no_hostile_input_crashes_or_hangs(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--timeout", "600"],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    table = result.stdout
    print(table)
    assert result.returncode == 0, f"{table}\n{result.stderr[-3000:]}"
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| input")]
    assert len(rows) >= 45  # every corpus file and every situation has its row (53 kinds on 2026-12-08)
    assert not [row for row in rows if "CRASH" in row or "HANG" in row]
