"""The run directory's one reader of metrics.json, eval's data root taken from it, and one rule with one message
whether it is broken from the command line or from Python."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from transferlab.backbones.builder import build_head
from transferlab.commands.eval import run_data_root
from transferlab.data.augment import Augment
from transferlab.data.datasets import check_loader_settings
from transferlab.data.stratified import check_split_settings
from transferlab.data.transforms import build_train_transform
from transferlab.launch.config_checks import validate
from transferlab.launch.resume import finished
from transferlab.reports.comparison import summarize_sweep
from transferlab.runs.layout import (
    CONFIG_FILE,
    ERROR_FILE,
    METRICS_FILE,
    OVERRIDES_FILE,
    RESOLVED_ERROR_FILE,
    read_confusion_matrix,
    read_metrics,
    write_metrics,
)


def test_read_metrics_none_when_missing_error_naming_the_file_when_broken(tmp_path: Path) -> None:
    assert read_metrics(tmp_path) is None
    write_metrics(tmp_path, {"best_val_acc": 0.5, "epochs": 3})
    assert read_metrics(tmp_path) == {"best_val_acc": 0.5, "epochs": 3}
    (tmp_path / METRICS_FILE).write_text('{"best_val_acc": 0.5,')  # cut short
    with pytest.raises(ValueError, match=rf"{tmp_path / METRICS_FILE} unreadable"):
        read_metrics(tmp_path)


def test_a_broken_metrics_file_is_a_failed_row_and_an_unfinished_run(tmp_path: Path) -> None:
    job = tmp_path / "0"
    (job / OVERRIDES_FILE).parent.mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(["strategy=scratch"]), job / OVERRIDES_FILE)
    (job / METRICS_FILE).write_text("{")
    [row] = summarize_sweep(tmp_path)
    assert row["status"] == "failed" and f"{job / METRICS_FILE} unreadable" in row["error"]
    # ckpt_path=auto resumes a run whose metrics.json is broken rather than skipping it as finished.
    assert not finished(OmegaConf.create({"ckpt_path": "auto", "trainer": {"max_epochs": 2}}), job)


def test_eval_reads_the_data_root_the_run_recorded(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / CONFIG_FILE).parent.mkdir(parents=True)
    # A root that resolved only inside the training job's environment.
    OmegaConf.save(OmegaConf.create({"data": {"root": "${oc.env:GONE_WITH_THE_JOB}"}}), run_dir / CONFIG_FILE)
    with pytest.raises(ValueError, match=r"cannot tell data.root of .*config.yaml.*pass data.root="):
        run_data_root(run_dir)  # unfinished: only the config to go on
    (run_dir / METRICS_FILE).write_text(json.dumps({"data_root": str(tmp_path / "images")}))
    assert run_data_root(run_dir) == tmp_path / "images"


AUGMENT = {"image_size": 32, "hflip": 0.5, "rot90": 0.0, "color_jitter": 0.0}


@pytest.mark.parametrize(
    ("override", "from_python"),
    [
        # The augment schema types hflip as a float: the config holds 2.0, as Augment does.
        ("augment.hflip=2", lambda: Augment(hflip=2.0)),
        ("augment.random_crop_scale=[0.9,0.1]", lambda: build_train_transform(**AUGMENT, random_crop_scale=[0.9, 0.1])),
        ("model.head.dropout=1.0", lambda: build_head(8, 3, hidden_dim=None, dropout=1.0)),
        ("data.batch_size=0", lambda: check_loader_settings(batch_size=0, num_workers=0)),
        ("data.val_fraction=1.2", lambda: check_split_settings(val_fraction=1.2, test_fraction=0.1, seed=0)),
    ],
)
def test_one_rule_one_message_from_the_command_line_and_from_python(config, override: str, from_python) -> None:
    with pytest.raises(ValueError) as on_the_command_line:
        validate(config(override))
    with pytest.raises(ValueError) as in_python:
        from_python()
    assert str(on_the_command_line.value) == str(in_python.value)
    assert override.split("=")[0] in str(in_python.value)


def test_a_finished_relaunch_retires_the_earlier_failure(config, tmp_path: Path) -> None:
    from transferlab.commands.train import run

    cfg = config("trainer.max_epochs=1")
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True)
    (run_dir / ERROR_FILE).write_text("FileNotFoundError: data.root missing\n")  # an earlier launch that failed
    run(cfg)
    assert not (run_dir / ERROR_FILE).exists()  # summary.csv must not show a finished job with that error
    assert (run_dir / RESOLVED_ERROR_FILE).read_text().startswith("FileNotFoundError")  # kept, not lost


def test_a_thousand_class_confusion_matrix_lives_in_its_own_file(tmp_path: Path) -> None:
    names = [f"class,{i:04d}" for i in range(1000)]  # commas in names: the CSV quotes them
    matrix = [[(i * 7 + j) % 3 if i != j else 5 for j in range(1000)] for i in range(1000)]
    write_metrics(tmp_path, {"test_acc": 0.5, "class_names": names, "test_confusion_matrix": matrix})
    assert len((tmp_path / "metrics.json").read_text().splitlines()) < 1100  # the names, not a million numbers
    saved = read_metrics(tmp_path)
    assert "test_confusion_matrix" not in saved and saved["test_confusion_matrix_file"] == "confusion_matrix.csv"
    assert read_confusion_matrix(tmp_path, saved) == matrix
    with (tmp_path / "confusion_matrix.csv").open(newline="") as file:
        header = next(csv.reader(file))
    assert header == ["true \\ predicted", *names]
    # A run written before the matrix had its own file keeps it inline; it is read the same way.
    assert read_confusion_matrix(tmp_path, {"test_confusion_matrix": [[1, 0], [0, 1]]}) == [[1, 0], [0, 1]]
    assert read_confusion_matrix(tmp_path, {"test_acc": 0.5}) is None
