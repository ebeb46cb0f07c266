"""The sweep report: report.md and report.png from the job folders of a multirun, and its command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from matplotlib.image import imread
from omegaconf import OmegaConf
from trained_run import train_once

from transferlab.report import ReportCallback, collect_jobs, main


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, shapes_root: Path) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.getbasetemp() / "trained_run"
    return run_dir, train_once(run_dir, shapes_root)


@pytest.fixture
def sweep_dir(trained, tmp_path: Path) -> Path:
    """Three jobs made from the trained run: two finished (job 1 with a better test accuracy), one failed."""
    run_dir, _ = trained
    sweep = tmp_path / "sweep"
    jobs = {"0": ["data=folder", "strategy=scratch"], "1": ["data=folder", "strategy=finetune"]}
    for job, overrides in jobs.items():
        shutil.copytree(run_dir, sweep / job, ignore=shutil.ignore_patterns("checkpoints", "plots"))
        OmegaConf.save(OmegaConf.create(overrides), sweep / job / ".hydra" / "overrides.yaml")
    metrics_file = sweep / "1" / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    metrics.update(test_acc=0.9, test_per_class_acc={"circle": 1.0, "ellipse": 0.5})
    metrics_file.write_text(json.dumps(metrics))
    (sweep / "2" / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(["data=folder", "strategy=feature_extraction"]), sweep / "2/.hydra/overrides.yaml")
    (sweep / "2" / "error.txt").write_text("RuntimeError: out of memory\n")
    return sweep


def test_report_ranks_jobs_and_names_what_differs(sweep_dir: Path) -> None:
    main([str(sweep_dir)])
    report = (sweep_dir / "report.md").read_text()
    table = [line for line in report.splitlines() if line.startswith("| ") and "`strategy=" in line]
    assert [line.split(" | ")[1] for line in table] == ["1", "0", "2"]  # by test accuracy, failed last
    assert table[0].startswith("| 1 | 1 | `strategy=finetune` | scratch | resnet18 | ")
    assert "90.0%" in table[0] and table[2].startswith("| failed | 2 |")
    header = next(line for line in report.splitlines() if line.startswith("| rank |"))
    assert "| epochs to best | epochs | s/epoch | fit time | trainable params |" in header
    metrics = json.loads((sweep_dir / "0" / "metrics.json").read_text())
    cost = f"| 1 | {metrics['epochs']} | {metrics['fit_seconds'] / metrics['epochs']:.1f} s | "
    assert cost in table[1] and table[1].endswith(f"| {metrics['trainable_params']:,} |")
    assert "**Best: `strategy=finetune`** (job 1)" in report
    assert "Common to all jobs: `data=folder`." in report
    assert "| circle | 100.0% |" in report  # the per-class table, best job first
    assert "- job 2 `strategy=feature_extraction`: RuntimeError: out of memory" in report
    assert "![" in report and "(report.png)" in report
    assert imread(sweep_dir / "report.png").shape[1] > 1000


def test_jobs_carry_their_validation_curve(sweep_dir: Path, trained) -> None:
    # Job 1 as if resumed into a 4-epoch run whose val accuracy peaked first at epoch index 1, then tied.
    resumed = sweep_dir / "1" / "logs" / "version_9" / "metrics.csv"
    resumed.parent.mkdir(parents=True)
    resumed.write_text("epoch,step,val/acc\n0,4,0.2\n1,9,0.6\n2,14,0.6\n3,19,0.4\n")
    jobs = {row["job"]: row for row in collect_jobs(sweep_dir)}
    assert jobs["1"]["epochs_to_best"] == 2
    assert list(jobs["0"]["val_acc"]) == [0]
    assert jobs["0"]["val_acc"][0] == pytest.approx(trained[1]["best_val_acc"])
    assert jobs["2"]["val_acc"] == {} and jobs["2"]["status"] == "failed"
    assert jobs["0"]["epochs_to_best"] == 1 and jobs["2"]["epochs_to_best"] is None
    assert jobs["0"]["seconds_per_epoch"] == pytest.approx(jobs["0"]["fit_seconds"] / jobs["0"]["epochs"])


def test_callback_writes_the_report_at_multirun_end(sweep_dir: Path) -> None:
    ReportCallback().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir)}}}))
    assert (sweep_dir / "report.md").is_file() and (sweep_dir / "report.png").is_file()


def test_command_line_names_a_folder_without_jobs(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main([str(tmp_path)])
    assert "holds no job folders" in capsys.readouterr().err
