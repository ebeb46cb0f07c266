"""eval.py and predict.py run as a user runs them, on a trained run; outputs land inside the run dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from trained_run import train_once

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, shapes_root: Path) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.getbasetemp() / "trained_run"
    return run_dir, train_once(run_dir, shapes_root)


def command(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [sys.executable, str(REPO / script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    code = result.returncode  # a plain int, so that a failure shows the stderr tail, not the whole output
    assert code == 0, f"{script} exited with {code}; stderr tail:\n{result.stderr[-4000:]}"
    return result


def test_eval_and_predict_commands(trained, shapes_root: Path, tmp_path: Path) -> None:
    run_dir, run_metrics = trained
    command("eval.py", f"run_dir={run_dir}", cwd=tmp_path)
    evaluated = json.loads((run_dir / "eval" / "test" / "metrics.json").read_text())
    assert evaluated["acc"] == pytest.approx(run_metrics["test_acc"])
    assert (run_dir / "eval" / "test" / "plots" / "confusion_matrix.png").is_file()
    assert (run_dir / "eval" / "test" / ".hydra" / "config.yaml").is_file()

    command("predict.py", f"run_dir={run_dir}", f"inputs={shapes_root / 'star'}", "top_k=1", cwd=tmp_path)
    (predictions,) = run_dir.glob("predict/*/predictions.csv")
    assert len(predictions.read_text().splitlines()) == 1 + 15
