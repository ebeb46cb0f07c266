"""Checkpoints: which one a run resumes from, what a checkpoint says about its classes, and the random state
that travels inside it so a resumed run continues the same random stream.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pytorch_lightning import Callback

log = logging.getLogger(__name__)

LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"


def resolve_ckpt_path(ckpt_path: str | None, output_dir: Path) -> Path | None:
    """``None`` starts fresh; ``"auto"`` resumes this run dir's ``last.ckpt`` if there is one; else a file."""
    if ckpt_path is None:
        return None
    if ckpt_path == "auto":
        last = output_dir / LAST_CHECKPOINT
        return last if last.is_file() else None
    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt_path}: no such checkpoint file (or use ckpt_path=auto)")
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A Lightning checkpoint, read with ``weights_only=True``: plain data only, never code."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling fails in many types; all mean "not a checkpoint we trust"
        raise ValueError(f"{path} could not be loaded as a checkpoint with weights_only=True: {error}") from None


def check_checkpoint_classes(path: Path, class_names: list[str]) -> None:
    """Refuse to resume a checkpoint trained on other classes than the data's."""
    saved = load_checkpoint(path).get("hyper_parameters", {}).get("class_names")
    if saved is not None and list(saved) != list(class_names):
        raise ValueError(
            f"ckpt_path={path} was trained on classes {list(saved)}, but data.root has {list(class_names)}; "
            "resume with the same data, or start a new run with model.weights=<checkpoint> to fine-tune it"
        )


class RandomStateCheckpoint(Callback):
    """Saves the torch, NumPy and Python random states in every checkpoint and restores them on resume.

    Lightning restores weights, optimizer, scheduler and loop counters but not the random streams, so without
    this a resumed run shuffles and augments differently from the run it continues. The states are stored as
    tensors and lists so checkpoints still load with ``weights_only=True``.
    """

    def state_dict(self) -> dict[str, Any]:
        version, mt_state, gauss = random.getstate()
        _, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
        return {
            "torch": torch.get_rng_state(),
            "numpy": [
                torch.from_numpy(np_keys.astype(np.int64)),
                int(np_pos),
                int(np_has_gauss),
                float(np_gauss),
            ],
            "python": [version, list(mt_state), gauss],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Lightning restores callbacks before the fit loop builds the first resumed epoch's data iterator (the
        # sanity check in between runs under isolate_rng), so applying the states here gives that iterator the
        # random stream the uninterrupted run had when it saved this checkpoint.
        torch.set_rng_state(state_dict["torch"])
        np_keys, np_pos, np_has_gauss, np_gauss = state_dict["numpy"]
        np.random.set_state(("MT19937", np_keys.numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss))
        version, mt_state, gauss = state_dict["python"]
        random.setstate((version, tuple(mt_state), gauss))
