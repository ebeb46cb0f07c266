"""Runs others can read and machines other than Linux: file modes under the umask, no fcntl, MPS as a device."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from transferlab.devices import resolve_device
from transferlab.files import atomic_write_json, atomic_write_text


@pytest.fixture
def umask():
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_writes_honour_the_umask_like_open(tmp_path, umask):
    umask(0o022)
    written = atomic_write_json(tmp_path / "metrics.json", {"acc": 1.0})
    with open(tmp_path / "plain.txt", "w") as f:
        f.write("x")
    assert mode(written) == mode(tmp_path / "plain.txt") == 0o644
    umask(0o077)
    assert mode(atomic_write_text(tmp_path / "private.txt", "x")) == 0o600


def test_an_atomic_rewrite_keeps_the_files_mode(tmp_path, umask):
    path = tmp_path / "splits.csv"
    path.write_text("old")
    path.chmod(0o664)
    umask(0o077)
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and mode(path) == 0o664


def test_device_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto").type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"
    assert resolve_device("cpu").type == "cpu"


@pytest.mark.slow
def test_every_module_imports_without_fcntl():
    # Windows has no fcntl: with it made unimportable, every transferlab module must still import.
    code = """
import importlib, pkgutil, sys
sys.modules["fcntl"] = None  # import fcntl now raises ImportError, as on Windows
import transferlab
failed = []
for module in pkgutil.iter_modules(transferlab.__path__):
    try:
        importlib.import_module(f"transferlab.{module.name}")
    except Exception as error:
        failed.append(f"{module.name}: {error!r}")
print("\\n".join(failed))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "", result.stdout
