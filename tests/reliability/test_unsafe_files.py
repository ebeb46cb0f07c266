"""Checkpoints carrying code are refused; archives cannot write outside their target; full or read-only disks."""

from __future__ import annotations

import errno
import io
import os
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest
import torch

from transferlab import files
from transferlab.backbones.weights import read_state_dict_file
from transferlab.commands.train import run
from transferlab.data.archives import extract_archive
from transferlab.launch.cli import ConfigError
from transferlab.training.checkpointing import SafeCheckpointIO, load_checkpoint


class Payload:
    """Unpickling this calls open(marker, "w"): harmless, but proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture
def evil_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"net.fc.weight": torch.zeros(2, 2)}, "extra": Payload(marker)}, path)
    return path, marker


def test_the_payload_is_live_when_loaded_unsafely(evil_checkpoint) -> None:
    path, marker = evil_checkpoint
    torch.load(path, weights_only=False)
    assert marker.exists()  # so the refusals below are refusals of real code


def test_every_loader_refuses_a_checkpoint_carrying_code(evil_checkpoint, config, tmp_path: Path) -> None:
    path, marker = evil_checkpoint
    with pytest.raises(ValueError, match=r"evil\.ckpt could not be loaded .*weights_only=True"):
        load_checkpoint(path)
    with pytest.raises(ValueError, match=r"model\.weights=.*evil\.ckpt.*weights_only=True"):
        read_state_dict_file(path)
    with pytest.raises(ValueError, match=r"weights_only=True"):
        SafeCheckpointIO().load_checkpoint(path)
    with pytest.raises(ValueError, match=r"weights_only=False"):
        SafeCheckpointIO().load_checkpoint(path, weights_only=False)
    with pytest.raises(ValueError, match=r"evil\.ckpt could not be loaded"):
        run(config(f"ckpt_path={path}", output_dir=tmp_path / "resume"))
    assert not marker.exists()
    assert not (tmp_path / "resume" / "checkpoints").exists()  # refused before training


def test_checkpoint_save_is_atomic_and_a_full_disk_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    io_plugin = SafeCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    io_plugin.save_checkpoint({"epoch": 1, "w": torch.ones(3)}, path)
    real_save = torch.save

    def disk_full(obj, file, *args, **kwargs):
        real_save(obj, file, *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match=r"last\.ckpt.*previous checkpoint there is intact.*ckpt_path=auto"):
        io_plugin.save_checkpoint({"epoch": 2, "w": torch.zeros(3)}, path)
    assert load_checkpoint(path)["epoch"] == 1
    assert os.listdir(path.parent) == ["last.ckpt"]  # no temporary file left behind


def test_read_only_or_full_output_folder_fails_before_training(config, tmp_path: Path, monkeypatch) -> None:
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(OSError, match=r"output folder .*not writable \(Read-only file system\).*hydra\.run\.dir"):
        files.check_output_dir(tmp_path / "out", need_bytes=1)
    monkeypatch.undo()

    (tmp_path / "a-file").write_text("")
    with pytest.raises(OSError, match=r"a-file/run.*not writable"):
        files.check_output_dir(tmp_path / "a-file" / "run", need_bytes=1)

    monkeypatch.setattr(files.shutil, "disk_usage", lambda _: type("Usage", (), {"free": 10 * 2**20})())
    with pytest.raises(ConfigError, match=r"has 10 MiB free, but this run needs about \d+ MiB"):  # a refusal
        run(config("trainer.max_epochs=1"))
    assert not (tmp_path / "run" / "checkpoints").exists()


def _tar(path: Path, *members: tuple[tarfile.TarInfo, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize(
    ("member", "why"),
    [
        (_member("/tmp/transferlab-absolute.txt"), "absolute"),
        (_member("data/../../escaped.txt"), "outside the destination"),
        (_member("data/link", tarfile.SYMTYPE, "../../outside"), "outside the destination"),
        (_member("data/hard", tarfile.LNKTYPE, "../../../etc/passwd"), "outside the destination"),
        (_member("data/absolute-link", tarfile.SYMTYPE, "/etc/passwd"), "absolute"),
    ],
)
def test_crafted_tar_is_refused_and_nothing_is_written(tmp_path: Path, member, why: str) -> None:
    archive = _tar(tmp_path / "crafted.tar.gz", (_member("data/ok.txt"), b"fine"), (member, b"evil"))
    target = tmp_path / "out" / "inner"
    with pytest.raises(ValueError, match=rf"refusing to extract .*{member.name!s}.*{why}"):
        extract_archive(archive, target)
    assert list(target.iterdir()) == []  # checked before the first member was written
    assert not (tmp_path / "escaped.txt").exists() and not Path("/tmp/transferlab-absolute.txt").exists()


def test_safe_archives_extract(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "ok.tar", (_member("data/cat/a.txt"), b"cat"), (_member("data/l", tarfile.SYMTYPE, "cat"), b"")
    )
    extract_archive(archive, tmp_path / "t")
    assert (tmp_path / "t/data/cat/a.txt").read_bytes() == b"cat"
    with zipfile.ZipFile(tmp_path / "ok.zip", "w") as zf:
        zf.writestr("dog/b.txt", "dog")
    assert (extract_archive(tmp_path / "ok.zip", tmp_path / "z") / "dog/b.txt").read_text() == "dog"


def test_crafted_zip_is_refused(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
        zf.writestr("ok.txt", "fine")
        zf.writestr("../escaped.txt", "evil")
    with pytest.raises(ValueError, match=r"'\.\./escaped\.txt' is unsafe"):
        extract_archive(tmp_path / "bad.zip", tmp_path / "z")
    assert not (tmp_path / "z" / "ok.txt").exists()
    (tmp_path / "notes.tar").write_text("not an archive")
    with pytest.raises(ValueError, match="neither a tar nor a zip"):
        extract_archive(tmp_path / "notes.tar", tmp_path / "z")
