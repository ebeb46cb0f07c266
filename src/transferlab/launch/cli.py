"""What the entry scripts share before anything heavy is imported: how a user's mistake is reported.

An error caused by the user's data, config or machine (a refused config, a folder that is not a dataset, a class
with no images, a full disk) is the user's to fix, so it is printed as one ``Error: <message>`` line naming the
file, key or folder and what to do, without a traceback, and the command exits with 1. ``HYDRA_FULL_ERROR=1``
still gives the traceback. Which errors count (:func:`user_message`): a :class:`ConfigError`; a ``ValueError`` or a
file error that transferlab's own code raised (its messages are written for users; the same types raised inside a
library are a bug to report, with their traceback); and a disk that is full, read-only or over quota, wherever it
surfaced (torch's writer reports a full disk as a ``RuntimeError`` from ``inline_container.cc``).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parents[1]
USER_ERROR_TYPES = (ValueError, OSError)  # OSError: FileNotFoundError, NotADirectoryError, PermissionError, …
DISK_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up", errno.EROFS: "read-only"}
HINT = "(HYDRA_FULL_ERROR=1 shows the traceback)"


class ConfigError(ValueError):
    """A config the run refuses before it starts; the message names the keys and says what to do."""


def full_errors() -> bool:
    """Hydra's own switch for complete tracebacks."""
    return os.environ.get("HYDRA_FULL_ERROR", "") not in ("", "0")


def user_message(error: BaseException) -> str | None:
    """The message to show for `error` when it is the user's to fix (see the module doc); None for a bug."""
    if isinstance(error, ConfigError):
        return str(error)
    if isinstance(error, USER_ERROR_TYPES) and _raised_by_transferlab(error):
        return _text(error)
    for cause in _chain(error):
        if isinstance(cause, OSError) and cause.errno in DISK_ERRNOS:
            where = f" writing {cause.filename}" if cause.filename else ""
            return f"{cause.strerror or DISK_ERRNOS[cause.errno]}{where}"
    return None


def _text(error: BaseException) -> str:
    """The message alone: an ``OSError(errno, message)`` prints as ``[Errno 28] message``."""
    return error.strerror if isinstance(error, OSError) and error.strerror and not error.filename else str(error)


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _raised_by_transferlab(error: BaseException) -> bool:
    """Whether the innermost frame of `error`'s traceback is in this package's code."""
    traceback = error.__traceback__
    if traceback is None:
        return False
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    return Path(traceback.tb_frame.f_code.co_filename).resolve().is_relative_to(PACKAGE_DIR)


def _log_to_files(message: str) -> None:
    """`message` into the run's log files only: the terminal gets it once, from stderr."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Reports an error that is the user's to fix as ``Error: <message>`` on stderr (and in the run's log, when it
    started one) and exits with 1; any other error propagates with its traceback.

    A :class:`ConfigError` writes nothing (not even to the log): a refused re-launch leaves a run as it was. In a
    multirun, and with ``HYDRA_FULL_ERROR=1``, every error propagates as usual instead.
    """
    try:
        yield
    except Exception as error:
        message = None if in_multirun() or full_errors() else user_message(error)
        if message is None:
            raise
        if not isinstance(error, ConfigError):
            _log_to_files(f"Error: {message}")
        print(f"Error: {message}\n{HINT}", file=sys.stderr)
        sys.exit(1)
