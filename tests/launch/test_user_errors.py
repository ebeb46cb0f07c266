"""A user's mistake (data, config, machine) is one ``Error: …`` message and exit code 1, not a traceback; a bug
keeps its traceback; a launch refused for lack of disk space writes nothing into the run dir."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest
import torch
from helpers import FAST_OVERRIDES, REPO
from hydra.core.global_hydra import GlobalHydra

from transferlab import files
from transferlab.launch.cli import ConfigError, user_errors, user_message
from transferlab.runs.layout import ERROR_FILE, HYDRA_DIR, LAST_CHECKPOINT, LOG_FILE, METRICS_FILE
from transferlab.training.checkpointing import checkpoint_space


def _raise_from_transferlab() -> None:
    files.check_output_dir("/proc/transferlab-cannot-write-here", need_bytes=1)


def test_errors_from_our_checks_and_full_disks_are_the_users_and_bugs_are_not() -> None:
    assert user_message(ConfigError("data.root is wrong")) == "data.root is wrong"
    with pytest.raises(OSError) as ours:
        _raise_from_transferlab()
    assert "not writable" in user_message(ours.value)
    try:
        int("not a number")  # a ValueError raised outside transferlab: a bug to report, with its traceback
    except ValueError as error:
        assert user_message(error) is None
    try:  # torch's writer on a full disk: an OSError whose context is torch's RuntimeError
        with open("/dev/full", "wb") as file:
            torch.save({"w": torch.zeros(10_000)}, file)
    except OSError as error:
        assert user_message(RuntimeError("wrapped")) is None
        wrapped = RuntimeError("[enforce fail at inline_container.cc] file write failed")
        wrapped.__cause__ = error
        assert "No space left on device" in user_message(wrapped)
    with pytest.raises(KeyError), user_errors():
        raise KeyError("a bug")


def test_user_error_prints_one_message_and_exits_1(capsys, monkeypatch) -> None:
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit) as stop, user_errors():
        _raise_from_transferlab()
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: output folder '/proc/transferlab-cannot-write-here' is not writable")
    assert "Traceback" not in err and "HYDRA_FULL_ERROR=1" in err
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(OSError), user_errors():
        _raise_from_transferlab()


def train_py(*overrides: str) -> None:
    """``python train.py <overrides>``, in this process (Hydra, logging and all), from the repository root."""
    GlobalHydra.instance().clear()
    argv = sys.argv
    sys.argv = [str(REPO / "train.py"), *overrides]
    try:
        runpy.run_path(str(REPO / "train.py"), run_name="__main__")
    finally:
        sys.argv = argv
        GlobalHydra.instance().clear()


def test_train_py_reports_a_folder_that_is_not_there_as_one_error(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        train_py(*FAST_OVERRIDES, f"data.root={tmp_path / 'no-such-folder'}", f"hydra.run.dir={tmp_path / 'run'}")
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert f"Error: data.root '{tmp_path / 'no-such-folder'}' is not a folder" in err
    assert "Traceback" not in err
    assert "Error: data.root" in (tmp_path / "run" / LOG_FILE).read_text()  # the run's log says it too
    assert (tmp_path / "run" / ERROR_FILE).is_file()


def test_resume_refused_for_disk_space_writes_nothing_and_counts_the_checkpoints_it_replaces(
    tmp_path: Path, shapes_root: Path, capsys, monkeypatch
) -> None:
    run_dir = tmp_path / "run"
    common = [*FAST_OVERRIDES, f"data.root={shapes_root}", "model.backbone=timm/test_resnet", "model.pretrained=false"]
    train_py(*common, "trainer.max_epochs=1", f"hydra.run.dir={run_dir}")
    (run_dir / METRICS_FILE).unlink()  # as if it had been stopped after its last checkpoint
    (run_dir / ERROR_FILE).write_text("ValueError: an earlier failure, kept\n")
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.suffix != ".log"}

    monkeypatch.setattr(files.shutil, "disk_usage", lambda _: type("Usage", (), {"free": 2**10})())
    with pytest.raises(SystemExit) as stop:
        train_py(f"hydra.run.dir={run_dir}", "ckpt_path=auto", "trainer.max_epochs=2")
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert f"Error: output folder '{run_dir}' has 0 MiB free, but this run needs about" in err  # no "[Errno 28]"
    after = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.suffix != ".log"}
    assert after == before  # no .hydra/resume-1/, error.txt as it was, checkpoints untouched
    assert not (run_dir / HYDRA_DIR / "resume-1").exists()

    # The checkpoints a resume replaces count as room: the space it asks for is less than a new run's.
    from transferlab.training.checkpointing import load_checkpoint

    state = load_checkpoint(run_dir / LAST_CHECKPOINT)["state_dict"]
    weights = sum(t.numel() * t.element_size() for t in state.values())
    model = torch.nn.Module()
    model.w = torch.nn.Parameter(torch.zeros(weights // 4))
    assert checkpoint_space(model, tmp_path / "empty") == 9 * (weights // 4) * 4
    assert checkpoint_space(model, run_dir) < checkpoint_space(model, tmp_path / "empty")
    assert checkpoint_space(model, run_dir) >= 2 * (weights // 4) * 4
    monkeypatch.undo()
    train_py(f"hydra.run.dir={run_dir}", "ckpt_path=auto", "trainer.max_epochs=2")
    assert (run_dir / HYDRA_DIR / "resume-1" / "config.yaml").is_file()
    assert (run_dir / METRICS_FILE).is_file()
