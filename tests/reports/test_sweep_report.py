"""The sweep report: report.md and report.png from the job folders of a multirun, and its command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import train_once
from matplotlib.image import imread
from omegaconf import OmegaConf

from transferlab.reports.sweep_report import ReportCallback, _short_labels, collect_jobs, main


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, shapes_root: Path) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.getbasetemp() / "trained_run"
    return run_dir, train_once(run_dir, shapes_root)


@pytest.fixture
def sweep_dir(trained, tmp_path: Path) -> Path:
    """Three jobs made from the trained run: two finished (job 1 with the better test but the worse validation
    accuracy, and 3 test images that job 0 got wrong right), one failed."""
    run_dir, _ = trained
    sweep = tmp_path / "sweep"
    jobs = {"0": ["data=folder", "strategy=scratch"], "1": ["data=folder", "strategy=finetune"]}
    for job, overrides in jobs.items():
        shutil.copytree(run_dir, sweep / job, ignore=shutil.ignore_patterns("checkpoints", "plots"))
        OmegaConf.save(OmegaConf.create(overrides), sweep / job / ".hydra" / "overrides.yaml")
    metrics_file = sweep / "1" / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    metrics.update(
        test_acc=0.9, best_val_acc=0.01, test_acc_ci=[0.8, 0.95], test_per_class_acc={"circle": 1.0, "ellipse": 0.5}
    )
    metrics_file.write_text(json.dumps(metrics))
    predictions = (sweep / "1" / "predictions.csv").read_text().splitlines()
    wrong = [i for i, line in enumerate(predictions[1:], start=1) if line.endswith(",0")][:3]
    for i in wrong:
        predictions[i] = predictions[i][:-1] + "1"
    (sweep / "1" / "predictions.csv").write_text("\n".join(predictions) + "\n")
    (sweep / "2" / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(["data=folder", "strategy=feature_extraction"]), sweep / "2/.hydra/overrides.yaml")
    (sweep / "2" / "error.txt").write_text("RuntimeError: out of memory\n")
    return sweep


def test_report_selects_on_validation_and_shows_test_with_its_interval(sweep_dir: Path) -> None:
    main([str(sweep_dir)])
    report = (sweep_dir / "report.md").read_text()
    table = [line for line in report.splitlines() if line.startswith("| ") and "`strategy=" in line]
    # Job 1 has the higher test accuracy, job 0 the higher validation accuracy: job 0 ranks first.
    assert [line.split(" | ")[1] for line in table] == ["0", "1", "2"]
    metrics = json.loads((sweep_dir / "0" / "metrics.json").read_text())
    assert table[0].startswith(f"| 1 | 0 | `strategy=scratch` | scratch | resnet18 | {metrics['best_val_acc']:.3f} | ")
    low, high = metrics["test_acc_ci"]
    assert f"{metrics['test_acc']:.3f} [{low:.3f}, {high:.3f}] (n={metrics['test_n']})" in table[0]
    assert "0.900 [0.800, 0.950]" in table[1] and table[2].startswith("| failed | 2 |")
    assert "**Selected on validation: `strategy=scratch`** (job 0)" in report
    assert "test figures are shown for every job but never used to choose" in report
    header = next(line for line in report.splitlines() if line.startswith("| rank |"))
    assert "| epochs to best | epochs | s/epoch | fit time | trainable params |" in header
    cost = f"| 1 | {metrics['epochs']} | {metrics['fit_seconds'] / metrics['epochs']:.1f} s | "
    assert cost in table[0] and table[0].endswith(f"| {metrics['trainable_params']:,} |")
    # The 3 images only job 1 got right: McNemar exact p = 2 × 0.5^3 = 0.25.
    assert "job 0 alone right on 0 image(s), job 1 alone on 3: McNemar exact p = 0.25, not distinguishable" in report
    assert "> **Warning:** the test split has fewer than 30 images" in report
    assert "Common to all jobs: `data=folder`." in report
    assert "- job 2 `strategy=feature_extraction`: RuntimeError: out of memory" in report
    assert "![" in report and "(report.png)" in report
    assert imread(sweep_dir / "report.png").shape[1] > 1000


def test_report_refuses_a_test_metric(sweep_dir: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main([str(sweep_dir), "--metric", "test/acc"])
    assert "not a validation metric" in capsys.readouterr().err
    main([str(sweep_dir), "--metric", "val/loss"])  # lowest loss first
    assert "best validation val/loss" in (sweep_dir / "report.md").read_text()


def test_figure_labels_are_never_truncated_into_the_same_string() -> None:
    long = "strategy=finetune optimizer.lr=0.001 strategy.unfreeze_from=layer3 strategy.backbone_lr_scale="
    rows = [{"job": "0", "label": long + "0.1"}, {"job": "1", "label": long + "0.2"}]
    labels = _short_labels(rows)
    assert len(set(labels.values())) == 2 and all(len(label) <= 48 for label in labels.values())


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
