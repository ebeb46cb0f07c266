"""Real kill -9 during a run, then ckpt_path=auto; and a failing job inside a multirun."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
from pathlib import Path

import pytest
import torch
from helpers import FAST_OVERRIDES
from helpers import train as run_train

from transferlab.commands.train import run
from transferlab.training.checkpointing import load_checkpoint

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
COMMON = ["strategy=scratch", "trainer.max_epochs=2", "trainer.deterministic=true", "scheduler.warmup_epochs=0"]


def train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """train.py in a subprocess that can import the killers of this folder (its callbacks' _target_)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    return run_train(*args, env=env, cwd=cwd)


def test_kill_9_at_three_moments_then_auto_resume_ends_with_the_uninterrupted_weights(
    config, shapes_root: Path, tmp_path: Path
) -> None:
    run(config(*COMMON, output_dir=tmp_path / "straight"))
    straight = load_checkpoint(tmp_path / "straight/checkpoints/last.ckpt")

    run_dir = tmp_path / "killed"
    args = [*FAST_OVERRIDES, f"data.root={shapes_root}", *COMMON, f"hydra.run.dir={run_dir}", "ckpt_path=auto"]
    last = run_dir / "checkpoints" / "last.ckpt"
    for where in ("train", "val", "save"):  # all in epoch 1, after epoch 0's checkpoint
        killer = [
            "+callbacks.kill._target_=killers.KillAt",
            f"+callbacks.kill.where={where}",
            "+callbacks.kill.epoch=1",
        ]
        result = train(*args, *killer, cwd=tmp_path)
        assert result.returncode == -signal.SIGKILL, f"{where}: {result.returncode}\n{result.stderr[-3000:]}"
        assert load_checkpoint(last)["epoch"] == 0, where  # the last good checkpoint, whole
        assert not (run_dir / "metrics.json").exists()
    # The save really was cut halfway: the first checkpoint written in epoch 1 (best-… when val/acc improved,
    # else last.ckpt) is left as a temporary file, and the file it was replacing is still whole.
    assert list(last.parent.glob(".*.ckpt.*.tmp"))

    # A resume runs with the run's saved config, killer included: this launch disarms it (callbacks may change on
    # resume, see resume.py).
    result = train(*args, "+callbacks.kill.where=none", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = load_checkpoint(last)
    assert resumed["epoch"] == straight["epoch"] == 1
    for key, value in straight["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key
    assert not list(last.parent.glob(".*.tmp"))  # the next save cleared the half-written file


def test_a_failing_job_is_recorded_and_the_sweep_goes_on(shapes_root: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    result = train(
        "-m",
        *FAST_OVERRIDES,
        "trainer.max_epochs=1",
        f"data.root={tmp_path / 'missing'},{shapes_root}",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    # Every job ran and the summary was written; then the sweep exits non-zero, naming the failed job.
    assert result.returncode == 1, result.stderr[-3000:]
    assert "1 job(s) of the sweep" in result.stdout + result.stderr
    with (sweep / "summary.csv").open(newline="") as file:
        rows = sorted(csv.DictReader(file), key=lambda row: row["job"])
    assert [row["status"] for row in rows] == ["failed", "ok"]
    assert rows[0]["error"].startswith("FileNotFoundError: data.root") and "missing" in rows[0]["error"]
    error_txt = (sweep / "0" / "error.txt").read_text().splitlines()
    assert error_txt[0] == rows[0]["error"] and error_txt[1].startswith("Traceback")
    assert float(rows[1]["test_acc"]) >= 0
