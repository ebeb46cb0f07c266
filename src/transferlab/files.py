"""Writing run files atomically, so a kill never leaves half a file (and whole folders, built beside their place
and swapped in); checking an output folder can be written."""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back: the only portable way)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def temporary_name_prefix(path: Path) -> str:
    """The name prefix of :func:`atomic_file`'s temporary files for ``path`` (they end in ``.tmp``)."""
    return f".{path.name}."


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", **open_kwargs: Any) -> Iterator[IO]:
    """An open temporary file beside ``path``; on a clean exit it is flushed to disk and renamed over ``path``.

    The rename is atomic on POSIX and Windows, so readers see the old file or the new one, never a mix; on an
    error (or a kill) the old file stays and the temporary file is removed (or left, hidden, by a kill).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temporary_name_prefix(path), suffix=".tmp")
    try:
        # mkstemp makes the file 0600; the file replacing `path` gets the mode open() would give it: the existing
        # file's mode, or 0666 less the umask (0644 under umask 022), so that colleagues can read a shared run.
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o666 & ~current_umask())
        with os.fdopen(fd, mode, **open_kwargs) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str, *, errors: str = "strict") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_file`).

    ``errors="surrogateescape"`` writes file names that are not valid UTF-8 back as their original bytes.
    """
    with atomic_file(path, "w", encoding="utf-8", errors=errors, newline="") as file:
        file.write(text)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def check_output_dir(folder: str | os.PathLike, *, need_bytes: int, key: str = "hydra.run.dir") -> None:
    """Fails before training when `folder` cannot be written or has less than `need_bytes` free.

    Writing a probe file is the only reliable test: permissions alone say nothing about read-only mounts, and
    root passes every permission check.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-test.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise OSError(
            error.errno,
            f"output folder {str(folder)!r} is not writable ({error.strerror or error}): make it writable or point "
            f"{key} at a folder you can write to",
        ) from error
    free = shutil.disk_usage(folder).free
    if free < need_bytes:
        raise OSError(
            errno.ENOSPC,
            f"output folder {str(folder)!r} has {free / 2**20:.0f} MiB free, but this run needs about "
            f"{need_bytes / 2**20:.0f} MiB for its checkpoints: free some space or point {key} at another disk",
        )


def read_json_or_none(path: str | os.PathLike) -> Any:
    """The JSON in ``path``, or None when it is missing or unreadable (e.g. a marker of a dataset being built)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def atomic_write_csv(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Write a CSV file atomically; every file name the file system allows round-trips through it.

    Rows end in CRLF (RFC 4180, Python's csv default): a field holding a carriage return or a line feed is then
    quoted (with "\\n" endings, Python's csv leaves a lone "\\r" unquoted and readers break the row there).
    ``surrogateescape`` writes names that are not valid UTF-8 back as their original bytes. None is an empty cell.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return atomic_write_text(path, buffer.getvalue(), errors="surrogateescape")


def read_csv_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a CSV file written by :func:`atomic_write_csv`, as dicts keyed by its header."""
    with Path(path).open(newline="", encoding="utf-8", errors="surrogateescape") as file:
        return list(csv.DictReader(file))


@contextlib.contextmanager
def folder_beside(root: Path, tag: str) -> Iterator[Path]:
    """A hidden sibling folder of ``root`` (``.<name>.<tag>-<pid>``) to build a whole folder in before
    :func:`swap_in` puts it in place; removed on exit, whatever happens (one left by a killed run with our pid is
    cleared first)."""
    tmp = root.parent / f".{root.name}.{tag}-{os.getpid()}"
    root.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def swap_in(built: Path, root: Path, *, in_place: Callable[[], bool]) -> None:
    """Puts the complete folder ``built`` at ``root`` by one rename, so readers see the old folder or the new one,
    never a part of it (the demo dataset, a downloaded dataset).

    A folder already at ``root`` (the caller has checked it is an older one of its own, or empty) is moved aside
    first, since a rename replaces only an empty folder, then deleted. ``in_place()`` says whether ``root`` already
    holds what ``built`` holds (another process finished first): then nothing moves. Raises OSError when the rename
    fails for another reason.
    """
    if in_place():
        return
    stale = root.parent / f".{root.name}.stale-{os.getpid()}"
    try:
        if root.exists():
            with contextlib.suppress(FileNotFoundError):  # another process moved it aside first
                root.rename(stale)
        try:
            os.replace(built, root)
        except OSError:
            if not in_place():  # another process renamed its copy into place between our check and our rename
                raise
    finally:
        shutil.rmtree(stale, ignore_errors=True)
