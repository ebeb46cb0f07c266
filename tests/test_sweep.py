"""Tests for transferlab.sweep: summary rows, summary.csv, the Hydra callback and the command line."""

import csv
import io
import json
import os
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from rich.console import Console

from transferlab.sweep import (
    COLUMNS,
    SummaryCallback,
    main,
    print_summary,
    summarize_sweep,
    write_summary_csv,
)


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
    path = write_summary_csv(sweep_dir, summarize_sweep(sweep_dir))
    assert path == sweep_dir / "summary.csv"
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == COLUMNS
        rows = list(reader)
    assert [(r["job"], r["status"], r["best_val_acc"], r["test_acc"]) for r in rows] == [
        ("0", "ok", "0.9123", "0.875"),
        ("1", "failed", "", ""),
        ("2", "ok", "0.5", ""),
    ]
    assert not [name for name in os.listdir(sweep_dir) if name.endswith(".tmp")]


def test_print_summary_shows_percentages(sweep_dir):
    out = io.StringIO()
    print_summary(summarize_sweep(sweep_dir), console=Console(file=out, width=200))
    text = out.getvalue()
    assert "91.2%" in text and "87.5%" in text and "50.0%" in text
    assert "CUDA out of memory" in text


def test_callback_writes_summary_at_multirun_end(sweep_dir, capsys):
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir)}}})
    SummaryCallback().on_multirun_end(config=config, config_name="train")
    lines = (sweep_dir / "summary.csv").read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert len(lines) == 4
    assert "91.2%" in capsys.readouterr().out


def test_command_line_regenerates_summary(sweep_dir):
    main([str(sweep_dir)])
    assert (sweep_dir / "summary.csv").read_text().count("\n") == 4
    with pytest.raises(SystemExit):
        main([str(sweep_dir / "missing")])
