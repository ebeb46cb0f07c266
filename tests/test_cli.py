"""End-to-end tests of the command line: ``train.py`` run in subprocesses, as a user runs it.

Every run is shrunk to 32 px demo images, a few dozen of them and one or two CPU epochs, and writes only under
the test's tmp_path (run dir, demo-dataset cache, ``TORCH_HOME``).
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch
from torchvision.models import ResNet18_Weights, resnet18

from transferlab.backbones import build_network
from transferlab.demo import DEMO_CLASSES, MARKER_NAME

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 300  # seconds for one train.py run; a shrunk run takes about 30 s on 2 cores, most of it imports
STDERR_TAIL = 4000
IMAGES_PER_CLASS = 12

# Small enough for 2 CPU cores: 32 px images, 12 per class, batches of 8, one epoch, no warm-up.
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


def train(*args: str, env: dict[str, str], cwd: Path, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """Runs ``python train.py *args`` and returns its exit code and output; fails the test on a timeout.

    The run gets a session of its own so that a timeout kills it with every process it started (DDP ranks).
    """
    cmd = [sys.executable, str(REPO / "train.py"), *args]
    with subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            pytest.fail(f"train.py {' '.join(args)} ran past {timeout} s; stderr tail:\n{stderr[-STDERR_TAIL:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def assert_succeeded(result: subprocess.CompletedProcess) -> None:
    code = result.returncode  # a plain int, so that a failure shows the stderr tail, not the whole output
    assert code == 0, f"train.py exited with {result.returncode}; stderr tail:\n{result.stderr[-STDERR_TAIL:]}"


def assert_failed(result: subprocess.CompletedProcess) -> None:
    code = result.returncode
    assert code != 0, f"train.py succeeded where it should fail; stdout tail:\n{result.stdout[-2000:]}"


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def epochs_logged(run_dir: Path, version: int) -> set[int]:
    """The epochs that the CSV logger's ``logs/version_<version>`` has train or val rows for."""
    with (run_dir / "logs" / f"version_{version}" / "metrics.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    # Test metrics are logged too, at the epoch where fit stopped: leave their rows out.
    return {
        int(row["epoch"])
        for row in rows
        if any(value and key.startswith(("train/", "val/")) for key, value in row.items())
    }


@pytest.fixture(scope="session")
def torch_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``TORCH_HOME`` holding a stand-in for ResNet-18's ImageNet weights, the documented offline route.

    torchvision loads a file already in ``$TORCH_HOME/hub/checkpoints`` without downloading it; this one is a
    seeded random initialisation under the file name torchvision looks for.
    """
    home = tmp_path_factory.mktemp("torch_home")
    checkpoints = home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.manual_seed(0)
    # DEFAULT is the weight set transferlab loads for model.weights=imagenet (IMAGENET1K_V1 for resnet18).
    torch.save(resnet18().state_dict(), checkpoints / Path(urlparse(ResNet18_Weights.DEFAULT.url).path).name)
    return home


@pytest.fixture
def env(tmp_path: Path, torch_home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "TRANSFERLAB_CACHE": str(tmp_path / "cache"),
        "TORCH_HOME": str(torch_home),
        "PYTHONUNBUFFERED": "1",
    }


def test_readme_train_command(tmp_path, env):
    # The README's quick-start command, `uv run train.py`: the default config on the built-in demo dataset.
    run_dir = tmp_path / "run"
    assert_succeeded(train(*SHRINK, f"hydra.run.dir={run_dir}", env=env, cwd=tmp_path))

    metrics = read_metrics(run_dir)
    assert 0.0 <= metrics["test_acc"] <= 1.0
    assert metrics["epochs"] == 1
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    num_images = len(DEMO_CLASSES) * IMAGES_PER_CLASS
    with (run_dir / "splits.csv").open(newline="") as f:
        assert len(list(csv.DictReader(f))) == num_images
    demo_root = tmp_path / "cache" / "demo-shapes"
    marker = json.loads((demo_root / MARKER_NAME).read_text())
    assert (marker["images_per_class"], marker["image_size"]) == (IMAGES_PER_CLASS, 32)
    assert len(list(demo_root.glob("*/*.png"))) == num_images


def test_multirun_three_strategies_writes_summary(tmp_path, env):
    sweep_dir = tmp_path / "sweep"
    strategies = ["scratch", "feature_extraction", "finetune"]
    result = train(
        "-m",
        f"strategy={','.join(strategies)}",
        *SHRINK,
        f"hydra.sweep.dir={sweep_dir}",
        env=env,
        cwd=tmp_path,
    )
    assert_succeeded(result)

    with (sweep_dir / "summary.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["status"] for row in rows] == ["ok"] * 3, rows
    for strategy, row in zip(strategies, rows, strict=True):
        assert f"strategy={strategy}" in row["overrides"].split()
        assert float(row["test_acc"]) == read_metrics(sweep_dir / row["job"])["test_acc"]
    splits = {(sweep_dir / row["job"] / "splits.csv").read_bytes() for row in rows}
    assert len(splits) == 1, "the jobs of one sweep must share one train/val/test split"


def test_ckpt_auto_resumes_and_skips_finished(tmp_path, env):
    run_dir = tmp_path / "run"
    args = [*SHRINK, f"hydra.run.dir={run_dir}"]
    assert_succeeded(train(*args, env=env, cwd=tmp_path))
    metrics_path = run_dir / "metrics.json"
    last_ckpt = run_dir / "checkpoints" / "last.ckpt"
    finished = (metrics_path.stat().st_mtime_ns, metrics_path.read_bytes(), last_ckpt.stat().st_mtime_ns)

    # The same command again: the run has finished, so it is skipped without training.
    assert_succeeded(train(*args, "ckpt_path=auto", env=env, cwd=tmp_path))
    assert (
        metrics_path.stat().st_mtime_ns,
        metrics_path.read_bytes(),
        last_ckpt.stat().st_mtime_ns,
    ) == finished
    assert not (run_dir / "logs" / "version_1").exists(), "a skipped run must not start a Trainer"

    # Unfinished (no metrics.json) with a longer schedule: it resumes from last.ckpt and trains epoch 1 only.
    metrics_path.unlink()
    result = train(*args, "ckpt_path=auto", "trainer.max_epochs=2", env=env, cwd=tmp_path)
    assert_succeeded(result)
    assert re.search(r"(?i)resum\w* from \S*last\.ckpt", result.stdout + result.stderr), result.stdout[-2000:]
    assert read_metrics(run_dir)["epochs"] == 2
    assert epochs_logged(run_dir, version=0) == {0}
    assert epochs_logged(run_dir, version=1) == {1}


def test_ddp_on_cpu_two_processes(tmp_path, env):
    # finetune with a one-epoch warm-up, so the backbone unfreezes while DDP (gloo on CPU) wraps the model.
    run_dir = tmp_path / "run"
    result = train(
        *SHRINK,
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "strategy=finetune",
        "strategy.freeze_epochs=1",
        "trainer.max_epochs=2",
        f"hydra.run.dir={run_dir}",
        env=env,
        cwd=tmp_path,
    )
    assert_succeeded(result)

    metrics = read_metrics(run_dir)
    assert 0.0 <= metrics["test_acc"] <= 1.0
    assert metrics["epochs"] == 2
    network = build_network("resnet18", num_classes=len(DEMO_CLASSES))
    assert metrics["trainable_params"] == sum(p.numel() for p in network.parameters()), "backbone not unfrozen"


def test_bad_override_gives_clear_error(tmp_path, env):
    run_dir = tmp_path / "run"
    result = train(*SHRINK, "model.backbone=resnet7", f"hydra.run.dir={run_dir}", env=env, cwd=tmp_path)
    assert_failed(result)
    assert "resnet7" in result.stderr
    assert "resnet18" in result.stderr and "resnet50" in result.stderr, result.stderr[-STDERR_TAIL:]
    assert not (run_dir / "checkpoints").exists()


def test_offline_imagenet_error_is_clear(tmp_path, env):
    empty_torch_home = tmp_path / "empty_torch_home"
    run_dir = tmp_path / "run"
    # No network, even on a machine that has it: every proxy is a local port that refuses connections.
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{refusing.getsockname()[1]}"
        offline = {key: value for key, value in env.items() if key.lower() not in {"no_proxy", "all_proxy"}}
        offline |= {"TORCH_HOME": str(empty_torch_home), "HTTPS_PROXY": proxy, "https_proxy": proxy}
        offline |= {"HTTP_PROXY": proxy, "http_proxy": proxy}
        result = train(*SHRINK, "strategy=finetune", f"hydra.run.dir={run_dir}", env=offline, cwd=tmp_path, timeout=120)
    assert_failed(result)
    assert str(empty_torch_home / "hub" / "checkpoints") in result.stderr, result.stderr[-STDERR_TAIL:]
    assert Path(urlparse(ResNet18_Weights.DEFAULT.url).path).name in result.stderr
    assert "strategy=scratch" in result.stderr
    assert not (run_dir / "checkpoints").exists(), "it must fail before training starts"
