"""transferlab: image classification by transfer learning.

``from transferlab import Predictor`` classifies images held in memory (see
:class:`transferlab.inference.predictor.Predictor`). The names below are imported on first use, so that ``import
transferlab`` stays cheap (no torch).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transferlab.inference.predictor import ImagePrediction, Predictor

__all__ = ["ImagePrediction", "Predictor"]

_LAZY = {"ImagePrediction": "transferlab.inference.predictor", "Predictor": "transferlab.inference.predictor"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'transferlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
