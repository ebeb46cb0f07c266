"""bench/same_outputs.py, the check that a refactor leaves every output as it was: what it lets differ (timings,
the checkout's path, YAML key order, log prefixes) and what it does not (any value)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "same_outputs.py"


@pytest.fixture(scope="module")
def same_outputs():
    spec = importlib.util.spec_from_file_location("same_outputs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["same_outputs"] = module
    spec.loader.exec_module(module)
    return module


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def test_what_may_differ_and_what_may_not(same_outputs, tmp_path: Path) -> None:
    code_a, code_b = tmp_path / "checkout-a", tmp_path / "checkout-b"
    base = {
        "metrics.json": json.dumps({"test_acc": 0.5, "fit_seconds": 3.1, "class_names": ["a", "b"]}),
        "hydra.yaml": f"run:\n  dir: out\nconfig_sources: {code_a}/conf\n",
        "train.log": "[2026-12-06 01:00:00,000][transferlab.data.datamodule][INFO] - Training on 12 images in 3.2 s\n",
        "summary.csv": "job,test_acc,fit_seconds\n0,0.5,3.1\n",
        "plot.png": "pixels",
    }
    same = {
        "metrics.json": json.dumps({"class_names": ["a", "b"], "fit_seconds": 9.9, "test_acc": 0.5}),
        "hydra.yaml": f"config_sources: {code_b}/conf\nrun:\n  dir: out\n",
        "train.log": "[2026-12-07 09:30:00,000][transferlab.data.datasets][INFO] - Training on 12 images in 7.0 s\n",
        "summary.csv": "job,test_acc,fit_seconds\n0,0.5,8.0\n",
        "plot.png": "pixels",
    }
    before = same_outputs.manifest(write(tmp_path / "a", base), code_a)
    assert same_outputs.compare(before, same_outputs.manifest(write(tmp_path / "b", same), code_b)) == []

    changed = {
        **same,
        "metrics.json": json.dumps({"class_names": ["a", "b"], "fit_seconds": 9.9, "test_acc": 0.75}),
        "train.log": same["train.log"].replace("12 images", "13 images"),
        "extra.csv": "x\n1\n",
    }
    after = same_outputs.manifest(write(tmp_path / "c", changed), code_b)
    assert same_outputs.compare(before, after) == [
        "only after:  extra.csv",
        "differs:     metrics.json",
        "differs:     train.log",
    ]


def test_moved_modules_read_as_their_new_names(same_outputs, tmp_path: Path) -> None:
    """A config's _target_ and a report's command name the module where each version has it (runs/legacy.py)."""
    before = {"config.yaml": "scheduler:\n  _target_: transferlab.schedules.warmup_cosine\n",
              "report.md": "Regenerate with `python -m transferlab.report sweep`.\n"}  # fmt: skip
    after = {"config.yaml": "scheduler:\n  _target_: transferlab.training.schedules.warmup_cosine\n",
             "report.md": "Regenerate with `python -m transferlab.reports.sweep_report sweep`.\n"}  # fmt: skip
    old = same_outputs.manifest(write(tmp_path / "a", before), tmp_path)
    assert same_outputs.compare(old, same_outputs.manifest(write(tmp_path / "b", after), tmp_path)) == []
    moved = {**after, "config.yaml": after["config.yaml"].replace("warmup_cosine", "one_cycle")}
    assert same_outputs.compare(old, same_outputs.manifest(write(tmp_path / "c", moved), tmp_path)) == [
        "differs:     config.yaml"
    ]
