"""Tests for transferlab.reports.sweep_summary: summary rows, summary.csv, the Hydra callback and the command line."""

import csv
import io
import json
import os
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from rich.console import Console

from transferlab.reports.comparison import summarize_sweep
from transferlab.reports.sweep_summary import (
    COLUMNS,
    GROUP_COLUMNS,
    SummaryCallback,
    main,
    print_summary,
    summary_rows,
    write_summary_csv,
)
from transferlab.runs.layout import SUMMARY_FILE


def make_job(sweep_dir: Path, name: str, overrides: list[str], metrics=None, error=None) -> None:
    job_dir = sweep_dir / name
    (job_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), job_dir / ".hydra" / "overrides.yaml")
    if metrics is not None:
        (job_dir / "metrics.json").write_text(json.dumps(metrics))
    if error is not None:
        (job_dir / "error.txt").write_text(error)


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    make_job(
        tmp_path,
        "0",
        ["strategy=finetune", "seed=1"],
        {"best_val_acc": 0.9123, "test_acc": 0.875, "epochs": 5, "fit_seconds": 61.2, "test_f1": 0.8},
    )
    make_job(tmp_path, "1", ["strategy=scratch"], error="CUDA out of memory\nTraceback ...\n")
    make_job(tmp_path, "2", ["strategy=feature_extraction"], {"best_val_acc": 0.5, "epochs": 3})
    (tmp_path / "multirun.yaml").write_text("hydra: {}\n")
    (tmp_path / "notes").mkdir()  # no .hydra/overrides.yaml: not a job
    return tmp_path


def test_rows_report_metrics_status_and_first_error_line(sweep_dir):
    rows = summarize_sweep(sweep_dir)
    assert rows == [
        {
            "job": "0",
            "overrides": "strategy=finetune seed=1",
            "status": "ok",
            "best_val_acc": 0.9123,
            "test_acc": 0.875,
            "epochs": 5,
            "fit_seconds": 61.2,
            "error": "",
        },
        {
            "job": "1",
            "overrides": "strategy=scratch",
            "status": "failed",
            "best_val_acc": None,
            "test_acc": None,
            "epochs": None,
            "fit_seconds": None,
            "error": "CUDA out of memory",
        },
        {
            "job": "2",
            "overrides": "strategy=feature_extraction",
            "status": "ok",
            "best_val_acc": 0.5,
            "test_acc": None,
            "epochs": 3,
            "fit_seconds": None,
            "error": "",
        },
    ]


def test_jobs_sort_by_number(tmp_path):
    for job in range(11):
        make_job(tmp_path, str(job), [f"seed={job}"])
    assert [row["job"] for row in summarize_sweep(tmp_path)] == [str(job) for job in range(11)]


def test_summary_csv_has_fixed_columns_and_empty_missing_values(sweep_dir):
    path = write_summary_csv(sweep_dir, summary_rows(sweep_dir))
    assert path == sweep_dir / SUMMARY_FILE
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == COLUMNS
        rows = list(reader)
    # Ranked by best val acc, failed jobs last.
    assert [(r["rank"], r["job"], r["status"], r["best_val_acc"], r["test_acc"]) for r in rows] == [
        ("1", "0", "ok", "0.9123", "0.875"),
        ("2", "2", "ok", "0.5", ""),
        ("", "1", "failed", "", ""),
    ]
    assert not (sweep_dir / "summary_groups.csv").exists()  # nothing was repeated
    assert not [name for name in os.listdir(sweep_dir) if name.endswith(".tmp")]


def test_print_summary_shows_percentages(sweep_dir):
    out = io.StringIO()
    print_summary(summary_rows(sweep_dir), console=Console(file=out, width=200))
    text = out.getvalue()
    assert "91.2%" in text and "87.5%" in text and "50.0%" in text
    assert "CUDA out of memory" in text


def test_callback_writes_summary_at_multirun_end(sweep_dir, capsys):
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir)}}})
    SummaryCallback().on_multirun_end(config=config, config_name="train")
    lines = (sweep_dir / SUMMARY_FILE).read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert len(lines) == 4
    assert "91.2%" in capsys.readouterr().out


def test_command_line_regenerates_summary(sweep_dir):
    main([str(sweep_dir)])
    assert (sweep_dir / SUMMARY_FILE).read_text().count("\n") == 4
    with pytest.raises(SystemExit):
        main([str(sweep_dir / "missing")])


def test_ranking_uses_validation_even_when_test_disagrees(tmp_path):
    make_job(tmp_path, "0", ["strategy=scratch"], {"best_val_acc": 0.6, "test_acc": 0.95})
    make_job(tmp_path, "1", ["strategy=finetune"], {"best_val_acc": 0.8, "test_acc": 0.70})
    assert [row["job"] for row in summary_rows(tmp_path)] == ["1", "0"]


def test_repeats_over_folds_are_grouped_with_mean_and_std(tmp_path):
    values = {("scratch", 0): (0.6, 0.5), ("scratch", 1): (0.7, 0.6), ("finetune", 0): (0.9, 0.8)}
    for job, ((strategy, fold), (val, test)) in enumerate(values.items()):
        metrics = {"best_val_acc": val, "test_acc": test, "fit_seconds": 10.0 * (job + 1), "epochs": 2}
        make_job(tmp_path, str(job), [f"strategy={strategy}", f"data.fold={fold}"], metrics)
    make_job(tmp_path, "3", ["strategy=finetune", "data.fold=1"], error="RuntimeError: boom\n")
    write_summary_csv(tmp_path, summary_rows(tmp_path))
    with (tmp_path / "summary_groups.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == GROUP_COLUMNS
        groups = list(reader)
    assert [(g["rank"], g["group"], g["n"], g["failed"]) for g in groups] == [
        ("1", "strategy=finetune", "1", "1"),  # the failed fold is counted, not averaged in
        ("2", "strategy=scratch", "2", "0"),
    ]
    assert float(groups[1]["val_mean"]) == pytest.approx(0.65)
    assert float(groups[1]["val_std"]) == pytest.approx(0.0707107, abs=1e-6)  # sample std of 0.6, 0.7
    assert float(groups[1]["fit_mean"]) == pytest.approx(15.0)
    assert groups[0]["val_std"] == ""  # one finished repeat has no spread


def test_a_sweep_with_a_failed_job_exits_non_zero_naming_it(sweep_dir, caplog):
    from transferlab.reports.sweep_summary import ExitStatusCallback

    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir)}}})
    with pytest.raises(SystemExit) as exit_:
        ExitStatusCallback().on_multirun_end(config=config)
    assert exit_.value.code == 1
    assert "1 job(s) of the sweep" in caplog.text and "job 1 (strategy=scratch): CUDA out of memory" in caplog.text
    (sweep_dir / "1").rename(sweep_dir.parent / "moved")  # only finished jobs left
    ExitStatusCallback().on_multirun_end(config=config)  # returns: exit 0
