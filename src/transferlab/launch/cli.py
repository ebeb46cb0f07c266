"""What the entry scripts share before anything heavy is imported: how a refused config is reported.

A config the run refuses (a validation error, a resume that conflicts with the run's saved config) is the user's
to fix, so it is printed as its message, without a traceback; ``HYDRA_FULL_ERROR=1`` still gives the traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A config the run refuses before it starts; the message names the keys and says what to do."""


def full_errors() -> bool:
    """Hydra's own switch for complete tracebacks."""
    return os.environ.get("HYDRA_FULL_ERROR", "") not in ("", "0")


@contextlib.contextmanager
def config_errors(*, multirun: bool = False) -> Iterator[None]:
    """Reports a :class:`ConfigError` as ``Error: <message>`` on stderr and exits with 1.

    Nothing is written to the run dir (not even its log): a refused re-launch leaves a run as it was. In a multirun,
    and with ``HYDRA_FULL_ERROR=1``, the error propagates as usual instead.
    """
    try:
        yield
    except ConfigError as error:
        if multirun or full_errors():
            raise
        print(f"Error: {error}\n(HYDRA_FULL_ERROR=1 shows the traceback)", file=sys.stderr)
        sys.exit(1)
