"""Owns the lock that gives one training run at a time its run dir.

Two launches into one run dir (a re-run while the first still trains, a sweep started twice with ckpt_path=auto)
would interleave their checkpoints and metrics. The first holds ``<run_dir>/.transferlab.lock`` (filelock: an OS
lock, released on exit and by the OS when the process is killed) for the run's life; the second is refused at
once, naming the process that holds it (``.transferlab.lock.json``, written after the lock is taken).
Under DDP only global rank 0 takes it: the other ranks of the same run share the run dir by design.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout
from pytorch_lightning.utilities import rank_zero_only

from transferlab.runs.layout import LOCK_FILE, OWNER_FILE


class RunDirInUse(RuntimeError):
    """Another process is running in this run dir."""


@contextlib.contextmanager
def hold_run_dir(run_dir: str | os.PathLike) -> Iterator[None]:
    if getattr(rank_zero_only, "rank", 0) != 0:
        yield
        return
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(run_dir / LOCK_FILE, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RunDirInUse(
            f"{run_dir} is in use by another run ({_owner(run_dir)}): wait for it to end, or give this run "
            "another hydra.run.dir."
        ) from None
    owner = run_dir / OWNER_FILE
    try:
        owner.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}))
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()


def _owner(run_dir: Path) -> str:
    try:
        info = json.loads((run_dir / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return "process unknown"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("started", 0)))
    return f"process {info.get('pid')} on {info.get('host')}, started {started}"
