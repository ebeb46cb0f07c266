"""A run dir written before the modules moved into packages (tests/fixtures/run_before_packages, made at commit
8179bec) still resumes, evaluates, predicts and exports: its saved config and checkpoints name the old modules."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from helpers import assert_succeeded, command_config, train
from omegaconf import OmegaConf

from transferlab.runs.layout import read_config
from transferlab.runs.legacy import upgrade_targets

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "run_before_packages"


def test_the_fixture_names_the_old_modules() -> None:
    """What makes the fixture worth keeping: the old paths, in the saved config and in the checkpoint."""
    saved = OmegaConf.load(FIXTURE / "run" / ".hydra" / "config.yaml")
    assert saved.scheduler._target_ == "transferlab.schedules.warmup_cosine"
    checkpoint = torch.load(FIXTURE / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["hyper_parameters"]["scheduler"]["_target_"] == "transferlab.schedules.warmup_cosine"
    assert read_config(FIXTURE / "run").scheduler._target_ == "transferlab.training.schedules.warmup_cosine"


def test_upgrade_targets_leaves_other_targets_and_interpolations_alone() -> None:
    config = OmegaConf.create(
        {"a": {"_target_": "torch.optim.SGD"}, "b": [{"_target_": "transferlab.sweep.SummaryCallback"}], "c": "${a}"}
    )
    upgrade_targets(config)
    assert config.a._target_ == "torch.optim.SGD" and config.c == {"_target_": "torch.optim.SGD"}
    assert config.b[0]._target_ == "transferlab.reports.sweep_summary.SummaryCallback"


@pytest.mark.slow
def test_an_old_run_dir_resumes_evaluates_predicts_and_exports(tmp_path: Path, env: dict[str, str]) -> None:
    work = tmp_path / "old"
    shutil.copytree(FIXTURE, work)  # its config names data.root=images, relative to the folder it was made in
    run_dir = work / "run"
    before = json.loads((run_dir / "metrics.json").read_text())
    assert before["epochs"] == 1

    # Training longer resumes from last.ckpt with the saved config (whose scheduler names the old module).
    resumed = train("ckpt_path=auto", "trainer.max_epochs=2", f"hydra.run.dir={run_dir}", env=env, cwd=work)
    assert_succeeded(resumed)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["class_names"] == ["blue", "green", "red"]
    assert Path(metrics["data_root"]) == (work / "images").resolve()

    from transferlab.commands.eval import evaluate
    from transferlab.commands.export import export
    from transferlab.commands.predict import predict

    best = metrics["best_ckpt"]
    evaluated = evaluate(command_config("eval", run_dir / "eval", f"ckpt_path={best}"))
    assert evaluated["num_images"] == len(before["test_per_class_acc"]) == 3  # one test image per class
    assert evaluated["acc"] == pytest.approx(metrics["test_acc"])

    # The checkpoint written before the move, too: eval, predict and export read it as they read today's.
    old = str(run_dir / "checkpoints" / "best-epoch000.ckpt")
    rows = predict(command_config("predict", tmp_path / "predict", f"ckpt_path={old}", f"input={work / 'images'}"))
    assert len(rows) == 30 and not any("error" in row for row in rows)
    exported = export(command_config("export", tmp_path / "export", f"ckpt_path={old}", "format=onnx"))
    assert exported["max_abs_diff"]["onnx"] < 1e-4
    assert exported["preprocessing"]["image_size"] == 32 and exported["class_names"] == ["blue", "green", "red"]
