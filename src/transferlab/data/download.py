"""Downloading a dataset archive into the cache: resumable, checksum-verified, extracted safely, complete or absent.

``data=flowers`` uses it. The standard library does the work (urllib with an HTTP ``Range`` header, hashlib;
the lock is ``filelock``'s, portable); what is ours is the order of the steps, so that no interruption can leave a
folder that looks complete:

1. download to ``<root>.download/<file>.part``, resuming a partial file when the server honours ``Range`` and
   restarting it when it does not;
2. verify the size and the SHA-256 (a mismatch deletes the partial file: it cannot be resumed into a good one);
3. extract with :func:`transferlab.data.archives.extract_archive` into a hidden temporary folder and write the marker
   file ``.transferlab-download.json`` into it last, atomically;
4. rename that folder to ``root``: it appears complete, marker included, or not at all.

A ``root`` whose marker names the same URL and checksum is reused without a request; one whose marker names
another is replaced; a non-empty folder without a marker is not ours and is refused. A lock file serialises
processes on one machine (DDP ranks). The archive is deleted once extracted.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from filelock import FileLock

from transferlab.data.archives import extract_archive
from transferlab.files import atomic_write_json, folder_beside, read_json_or_none, swap_in

log = logging.getLogger(__name__)

MARKER_NAME = ".transferlab-download.json"
CHUNK = 1 << 20


def fetch_dataset(
    url: str,
    root: str | Path,
    *,
    sha256: str | None = None,
    subdir: str | None = None,
    timeout: float = 60.0,
) -> Path:
    """Makes ``root`` hold the contents of the archive at `url` (its folder `subdir`, if given) and returns it.

    Args:
        url: the archive (tar of any compression, or zip).
        root: the dataset folder to create; its parent holds the partial download and the lock.
        sha256: the archive's expected SHA-256 in hex; ``None`` skips the check (and logs the digest to set).
        subdir: the folder inside the archive that becomes ``root`` (``flower_photos`` for the flowers archive).
        timeout: seconds without data before a request is abandoned.

    Raises:
        ValueError: the checksum differs (config key ``data.download.sha256``), the archive is unsafe, or it has
            no `subdir`.
        ConnectionError: the download failed or was cut short; calling again resumes it.
    """
    root = Path(root).expanduser()
    spec = {"url": url, "sha256": sha256.lower() if sha256 else None, "subdir": subdir}
    if read_json_or_none(root / MARKER_NAME) == spec:
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with _locked(root.parent / f".{root.name}.lock"):
        if read_json_or_none(root / MARKER_NAME) == spec:  # another process finished while we waited for the lock
            return root
        _refuse_foreign_folder(root)  # before a long download, not after it
        work = root.parent / f".{root.name}.download"
        work.mkdir(exist_ok=True)
        name = PurePosixPath(urlparse(url).path).name or "archive"
        archive = work / name
        if not archive.is_file():
            part = work / f"{name}.part"
            _download(url, part, timeout=timeout)
            _verify(part, url, spec["sha256"])
            os.replace(part, archive)
        _extract_into_place(archive, root, subdir, spec)
        shutil.rmtree(work, ignore_errors=True)
    log.info("Dataset from %s ready in %s", url, root)
    return root


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` across processes: filelock's (flock on POSIX, LockFileEx on Windows)."""
    with FileLock(path):
        yield


def _download(url: str, part: Path, *, timeout: float) -> None:
    """Appends the rest of `url` to `part` (resume), or rewrites it when the server ignores the range."""
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # our partial file is not a prefix of what the server has: start over
            part.unlink()
            return _download(url, part, timeout=timeout)
        raise ConnectionError(f"downloading {url} failed: HTTP {error.code} {error.reason}") from error
    except OSError as error:
        raise ConnectionError(f"downloading {url} failed: {error}; check the network and re-run") from error
    with response:
        resumed = response.status == 206 and _range_start(response.headers.get("Content-Range")) == have
        if have:
            log.info("%s %s at byte %d", "Resuming" if resumed else "Restarting (no range support)", url, have)
        else:
            log.info("Downloading %s into %s", url, part.parent)
        length = response.headers.get("Content-Length")
        expected = (have if resumed else 0) + int(length) if length is not None else None
        received = have if resumed else 0
        try:
            with part.open("ab" if resumed else "wb") as file:
                while chunk := response.read(CHUNK):
                    file.write(chunk)
                    received += len(chunk)
        except OSError as error:  # includes http.client.IncompleteRead and timeouts
            raise ConnectionError(
                f"download of {url} interrupted after {received} bytes ({error}); re-run to resume it"
            ) from error
    if expected is not None and received != expected:
        raise ConnectionError(
            f"download of {url} interrupted after {received} of {expected} bytes; re-run to resume it"
        )
    return None


def _range_start(content_range: str | None) -> int | None:
    # "bytes 100-199/200" → 100
    try:
        return int(content_range.split()[1].split("-")[0]) if content_range else None
    except (IndexError, ValueError):
        return None


def _verify(part: Path, url: str, sha256: str | None) -> None:
    digest = hashlib.sha256()
    with part.open("rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    actual = digest.hexdigest()
    if sha256 is None:
        log.warning(
            "%s was not verified (data.download.sha256 is null); its SHA-256 is %s: set data.download.sha256=%s",
            url,
            actual,
            actual,
        )
    elif actual != sha256:
        part.unlink()  # a corrupt file cannot be resumed into a good one
        raise ValueError(
            f"{url} has SHA-256 {actual}, but data.download.sha256 is {sha256}: the download is corrupt or the file "
            "changed on the server. The file was deleted and nothing was extracted; re-run to download it again, or "
            "set data.download.sha256 to the new value if you trust the source."
        )


def _refuse_foreign_folder(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise ValueError(f"data.root={root} is a file; point data.root at a folder for the downloaded dataset")
    if root.is_dir() and read_json_or_none(root / MARKER_NAME) is None and any(root.iterdir()):
        raise ValueError(
            f"data.root={root} is not empty and holds no transferlab download ({MARKER_NAME} is missing); "
            "point data.root at another folder, or empty this one"
        )


def _extract_into_place(archive: Path, root: Path, subdir: str | None, spec: dict) -> None:
    """Extracts into a hidden sibling, writes the marker there last, then renames the whole folder to `root`."""
    with folder_beside(root, "extract") as tmp:
        extract_archive(archive, tmp)
        source = tmp / subdir if subdir else tmp
        if not source.is_dir():
            raise ValueError(
                f"{archive.name} has no folder {subdir!r} (it holds {sorted(p.name for p in tmp.iterdir())}): "
                "set data.download.subdir to the archive's top folder, or null"
            )
        atomic_write_json(source / MARKER_NAME, spec)
        # An older download (other URL or checksum) in the way is moved aside (_refuse_foreign_folder let it pass).
        swap_in(source, root, in_place=lambda: read_json_or_none(root / MARKER_NAME) == spec)
