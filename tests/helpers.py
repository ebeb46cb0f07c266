"""Helpers shared by the tests (plain functions and constants; the fixtures are in ``conftest.py``): the real Hydra
configs composed at test size, one tiny trained run shared by the eval/predict/plots/report/export tests, and running
an entry script in a subprocess as a user does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning import Callback

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"
TIMEOUT = 300  # seconds for one script run; a shrunk run takes about 30 s on 2 cores, most of it imports
STDERR_TAIL = 4000

# Small enough for 2 CPU cores: 32 px images, a few dozen files, two epochs (tests composing configs in-process).
FAST_OVERRIDES = [
    "data=folder",
    "data.image_size=32",
    "data.batch_size=8",
    "data.num_workers=0",
    "data.val_fraction=0.2",
    "data.test_fraction=0.2",
    "trainer=cpu",
    "trainer.max_epochs=2",
    "+trainer.enable_model_summary=false",
    "+trainer.enable_progress_bar=false",
    "~callbacks.progress_bar",
    "plots.enabled=false",  # ~1.5 s a run; the tests of the plots turn them on
]
# The same for train.py on the command line with the default (demo) data: 32 px, 12 images per class, one epoch.
IMAGES_PER_CLASS = 12
SHRINK = [
    "data.image_size=32",
    "data.demo.image_size=32",
    f"data.demo.images_per_class={IMAGES_PER_CLASS}",
    "data.batch_size=8",
    "data.num_workers=0",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "~callbacks.progress_bar",
    "+trainer.enable_progress_bar=false",
    "+trainer.enable_model_summary=false",
    "scheduler.warmup_epochs=0",
]


def make_config(output_dir: Path, data_root: Path, *overrides: str) -> DictConfig:
    """The real train.yaml, composed as ``python train.py <overrides>`` would, shrunk to test size."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[*FAST_OVERRIDES, f"data.root={data_root}", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


def command_config(name: str, output_dir: Path, *overrides: str) -> DictConfig:
    """conf/<name>.yaml composed as ``python <name>.py <overrides>`` would, writing into `output_dir`."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(name, overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


_RUNS: dict[Path, dict[str, Any]] = {}


def train_once(run_dir: Path, data_root: Path, *overrides: str) -> dict[str, Any]:
    """A 1-epoch scratch run into `run_dir` (once per session), with the `.hydra/config.yaml` Hydra would save."""
    from transferlab.commands.train import run  # torch and Lightning: only for the tests that train

    if run_dir not in _RUNS:
        cfg = make_config(run_dir, data_root, "trainer.max_epochs=1", "plots.enabled=true", *overrides)
        _RUNS[run_dir] = run(cfg)
        (run_dir / ".hydra").mkdir(exist_ok=True)
        OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")  # as a train.py run leaves it: unresolved
    return _RUNS[run_dir]


class InterruptAtEpoch(Callback):
    """Stands in for a killed process: raises when training reaches ``epoch``, after earlier checkpoints."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            raise InterruptedError(f"interrupted at epoch {self.epoch}")


def run_process(
    argv: list[str], *, env: dict[str, str] | None = None, cwd: Path = REPO, timeout: float = TIMEOUT
) -> subprocess.CompletedProcess:
    """Runs `argv` and returns its exit code and output; on a timeout kills it with every process it started (DDP
    ranks, loader workers: it gets a session of its own) and fails the test."""
    with subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            pytest.fail(f"{' '.join(argv)} ran past {timeout} s; stderr tail:\n{stderr[-STDERR_TAIL:]}")
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


def train(*args: str, env: dict[str, str] | None = None, cwd: Path, timeout: float = TIMEOUT):
    """``python train.py *args`` in a subprocess (see :func:`run_process`)."""
    return run_process([sys.executable, str(REPO / "train.py"), *args], env=env, cwd=cwd, timeout=timeout)


def assert_succeeded(result: subprocess.CompletedProcess) -> None:
    code = result.returncode  # a plain int, so that a failure shows the stderr tail, not the whole output
    assert code == 0, f"{result.args[1]} exited with {code}; stderr tail:\n{result.stderr[-STDERR_TAIL:]}"


def assert_failed(result: subprocess.CompletedProcess) -> None:
    code = result.returncode
    assert code != 0, f"{result.args[1]} succeeded where it should fail; stdout tail:\n{result.stdout[-2000:]}"
