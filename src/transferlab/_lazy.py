"""Lazy public names for a package's ``__init__``: ``from transferlab.data import FolderDataModule`` imports
``transferlab.data.datamodule`` only then, so that importing a package (or one light module of it, such as
``transferlab.runs.layout``) never pulls in torch and Lightning. The PEP 562 module ``__getattr__`` is the
standard way; written once here for every package. Imports nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` whose public ``name`` lives in ``package.<exports[name]>``."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*exports, *vars(importlib.import_module(package))})

    return __getattr__, __dir__
