"""End-to-end tests of the command line: ``train.py`` run in subprocesses, as a user runs it.

Every run is shrunk to 32 px demo images, a few dozen of them and one or two CPU epochs, and writes only under
the test's tmp_path (run dir, demo-dataset cache, ``TORCH_HOME``).
"""

from __future__ import annotations

import csv
import json
import re
import socket
from pathlib import Path
from urllib.parse import urlparse

import pytest
from helpers import IMAGES_PER_CLASS, SHRINK, STDERR_TAIL, assert_failed, assert_succeeded, train
from torchvision.models import ResNet18_Weights

from transferlab.backbones.builder import build_network
from transferlab.data.demo import DEMO_CLASSES, MARKER_NAME
from transferlab.runs.layout import LOG_FILE, SUMMARY_FILE, read_metrics

pytestmark = pytest.mark.slow


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

    with (sweep_dir / SUMMARY_FILE).open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["status"] for row in rows] == ["ok"] * 3, rows
    for strategy, row in zip(strategies, rows, strict=True):
        assert f"strategy={strategy}" in row["overrides"].split()
        assert float(row["test_acc"]) == read_metrics(sweep_dir / row["job"])["test_acc"]
    splits = {(sweep_dir / row["job"] / "splits.csv").read_bytes() for row in rows}
    assert len(splits) == 1, "the jobs of one sweep must share one train/val/test split"


def run_dir_state(run_dir: Path) -> dict[str, tuple[int, int]]:
    """Every file under `run_dir` with its size and modification time: what a refused launch must leave alone."""
    return {str(p.relative_to(run_dir)): (p.stat().st_size, p.stat().st_mtime_ns) for p in run_dir.rglob("*")}


def test_resume_by_run_dir_alone_skips_refuses_and_trains_longer(tmp_path, env):
    # The run starts with overrides (SHRINK, optimizer.lr); every later launch names only the run dir and ckpt_path.
    run_dir = tmp_path / "run"
    overrides = [*SHRINK, "optimizer.lr=0.002", "data.val_fraction=0.2", f"hydra.run.dir={run_dir}"]
    first = train(*overrides, env=env, cwd=tmp_path)
    assert_succeeded(first)
    # stdout is a pipe here, as under SLURM or nohup: one line per epoch
    epoch_line = r"epoch 1/1  train loss \d\.\d{4}  val loss \d\.\d{4} acc \d\.\d{4} f1 \d\.\d{4}  lr 0\.002  \d+\.\d s"
    assert re.search(epoch_line, first.stdout), first.stdout[-2000:]
    alone = [f"hydra.run.dir={run_dir}", "ckpt_path=auto"]
    saved_config = (run_dir / ".hydra" / "config.yaml").read_bytes()
    finished = run_dir_state(run_dir)

    # Finished: skipped, with nothing rewritten (.hydra/ included); no Trainer is started.
    assert_succeeded(train(*alone, env=env, cwd=tmp_path))
    assert {k: v for k, v in run_dir_state(run_dir).items() if k != LOG_FILE} == {
        k: v for k, v in finished.items() if k != LOG_FILE
    }
    assert not (run_dir / "logs" / "version_1").exists(), "a skipped run must not start a Trainer"
    skipped = run_dir_state(run_dir)

    # Overrides that change what the run trains are refused, naming each key with both values, before anything in
    # the run dir is written; the message comes first, without a traceback.
    refused = train(*alone, "data.val_fraction=0.3", "model=resnet34", "data.num_workers=1", env=env, cwd=tmp_path)
    assert_failed(refused)
    assert "data.val_fraction: 0.2 in the run, 0.3 in this launch" in refused.stderr, refused.stderr[-STDERR_TAIL:]
    assert "model.backbone: resnet18 in the run, resnet34 in this launch" in refused.stderr
    assert "num_workers" not in refused.stderr.split("Leave them out")[0], "a harmless override is no conflict"
    assert "Traceback" not in refused.stderr
    assert run_dir_state(run_dir) == skipped

    # Training longer: trainer.max_epochs raised, nothing else repeated. It resumes from last.ckpt with the saved
    # config (lr 0.002, val_fraction 0.2), trains epoch 1 only, and the schedule, rebuilt for 2 epochs from where
    # the 1-epoch cosine ended, runs it at half the peak rate instead of 0.
    longer = train(*alone, "trainer.max_epochs=2", env=env, cwd=tmp_path)
    assert_succeeded(longer)
    assert re.search(r"(?i)resum\w* from \S*last\.ckpt", longer.stdout + longer.stderr), longer.stdout[-2000:]
    assert (run_dir / ".hydra" / "config.yaml").read_bytes() == saved_config
    resumed = (run_dir / ".hydra" / "resume-1" / "config.yaml").read_text()
    assert "max_epochs: 2" in resumed and "lr: 0.002" in resumed and "val_fraction: 0.2" in resumed
    assert read_metrics(run_dir)["epochs"] == 2
    assert epochs_logged(run_dir, version=0) == {0}
    assert epochs_logged(run_dir, version=1) == {1}
    with (run_dir / "logs" / "version_1" / "metrics.csv").open(newline="") as f:
        head_lrs = [float(row["lr-AdamW/head"]) for row in csv.DictReader(f) if row.get("lr-AdamW/head")]
    assert head_lrs and all(0.0009 < lr < 0.0011 for lr in head_lrs), head_lrs  # 0.002 x (1 + cos(pi/2)) / 2
    assert "epoch 2/2" in longer.stdout
    log = (run_dir / LOG_FILE).read_text()
    assert "epoch 1/1  train loss" in log and "epoch 2/2  train loss" in log


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
