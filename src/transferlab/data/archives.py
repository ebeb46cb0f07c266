"""The one way transferlab extracts an archive: every member is checked before anything is written.

A tar or zip from elsewhere can name ``/etc/...``, ``../../x`` or a link pointing outside the target, and
extracting it naively writes there. :func:`extract_archive` refuses such an archive as a whole, so a bad archive
leaves nothing behind; anything transferlab extracts (datasets, weights) must go through it.
"""

from __future__ import annotations

import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath


def extract_archive(archive: str | Path, target: str | Path) -> Path:
    """Extracts a tar (any compression) or zip archive into `target` and returns `target`.

    Raises:
        FileNotFoundError: `archive` does not exist.
        ValueError: a member has an absolute path, climbs out with ``..``, is a link pointing outside `target`,
            or is a device or other special file; or the file is not a tar or zip archive.
    """
    archive, target = Path(archive), Path(target)
    if not archive.is_file():
        raise FileNotFoundError(f"archive {str(archive)!r} does not exist")
    target.mkdir(parents=True, exist_ok=True)
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:  # all checked before the first is written
                if PurePosixPath(member.name).is_absolute():
                    # The data filter would strip the "/" and extract it inside the target; refusing is clearer.
                    raise _refused(archive, member.name, "absolute path")
                try:
                    # Python's own "data" filter (PEP 706) knows every way a tar member can escape; it raises
                    # FilterError subclasses for absolute paths, "..", outside links, devices.
                    tarfile.data_filter(member, str(target))
                except tarfile.FilterError as error:
                    raise _refused(archive, member.name, str(error)) from None
            tar.extractall(target, members=members, filter="data")
    elif zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            # zipfile has no refusing mode (it silently rewrites "../x" to "x"), so the checks are ours.
            for info in infos:
                _check_zip_member(archive, info)
            zf.extractall(target, members=infos)
    else:
        raise ValueError(f"{archive} is neither a tar nor a zip archive")
    return target


def _check_zip_member(archive: Path, info: zipfile.ZipInfo) -> None:
    name = info.filename
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or (path.parts and path.parts[0].endswith(":")):
        raise _refused(archive, name, "absolute path")
    if ".." in path.parts:
        raise _refused(archive, name, "path climbs out of the target with '..'")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        # zipfile writes links as regular files holding the link text; refuse rather than silently change them.
        raise _refused(archive, name, "symbolic link")


def _refused(archive: Path, member: str, why: str) -> ValueError:
    return ValueError(
        f"refusing to extract {archive}: member {member!r} is unsafe ({why}). Nothing was extracted; "
        "get the archive from a trusted source or extract it by hand after checking it."
    )
