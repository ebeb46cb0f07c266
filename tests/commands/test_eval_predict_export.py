"""eval.py, predict.py and export.py run as a user runs them, on a trained checkpoint; outputs land inside its run
dir, or in Hydra's outputs/ folder for a checkpoint outside any run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import train_once

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


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


def test_eval_predict_and_export_commands(trained, shapes_root: Path, tmp_path: Path) -> None:
    run_dir, run_metrics = trained
    best = run_metrics["best_ckpt"]
    result = command("eval.py", f"ckpt_path={best}", cwd=tmp_path)
    evaluated = json.loads((run_dir / "eval" / "test" / "metrics.json").read_text())
    assert evaluated["acc"] == pytest.approx(run_metrics["test_acc"])
    assert (run_dir / "eval" / "test" / "plots" / "confusion_matrix.png").is_file()
    assert (run_dir / "eval" / "test" / ".hydra" / "config.yaml").is_file()
    assert "precision" in result.stdout and "triangle" in result.stdout  # the per-class table

    # A checkpoint on its own: no run dir to write into, so Hydra's outputs/<date>/<time>-predict.
    loose = shutil.copy(best, tmp_path / "model.ckpt")
    result = command("predict.py", f"ckpt_path={loose}", f"input={shapes_root / 'star'}", "top_k=1", cwd=tmp_path)
    (predictions,) = tmp_path.glob("outputs/*/*-predict/predictions.csv")
    assert len(predictions.read_text().splitlines()) == 1 + 15
    assert "Predictions (15 image(s)" in result.stdout

    command("export.py", f"ckpt_path={best}", cwd=tmp_path)
    exported = json.loads((run_dir / "export" / "model.json").read_text())
    assert exported["files"] == {"onnx": "model.onnx"} and exported["max_abs_diff"]["onnx"] < 1e-4
