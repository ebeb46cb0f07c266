"""Checkpoints: which one a run resumes from, what a checkpoint says about its classes, the random state that
travels inside it so a resumed run continues the same random stream, and how checkpoint files are written
(atomically) and read (``weights_only=True``).
"""

from __future__ import annotations

import errno
import logging
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pytorch_lightning import Callback
from pytorch_lightning.plugins.io import TorchCheckpointIO

from transferlab.files import atomic_file, temporary_name_prefix
from transferlab.runs.layout import CHECKPOINT_DIR, LAST_CHECKPOINT

log = logging.getLogger(__name__)


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


def checkpoint_space(model: torch.nn.Module, output_dir: Path) -> int:
    """Bytes a run into `output_dir` needs free for its checkpoints: best and last, each weights plus optimizer
    state (at most twice the weights), and the temporary file of an atomic save, with room to spare (9x the
    weights); less the checkpoints already there, which a resumed run replaces (at least one save's temporary file
    stays needed)."""
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    present = sum(path.stat().st_size for path in (Path(output_dir) / CHECKPOINT_DIR).glob("*.ckpt"))
    return max(9 * weights - present, 2 * weights)


def load_checkpoint(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    """A Lightning checkpoint, read with ``weights_only=True``: plain data only, never code."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # unpickling fails in many types; all mean "not a checkpoint we trust"
        if _is_incomplete(path, error):
            others = sorted(str(p) for p in Path(path).parent.glob("*.ckpt") if p != Path(path))
            raise ValueError(
                f"{path} is a corrupt or incomplete checkpoint (cut short while it was written or copied: "
                f"{str(error).splitlines()[0]}). Resume from another checkpoint instead"
                + (f" (this folder has {', '.join(others)})" if others else "")
                + ", or delete the file to start over; transferlab's own saves are atomic, so a run never leaves one."
            ) from None
        raise ValueError(
            f"{path} could not be loaded as a checkpoint with weights_only=True (tensors and plain data only; a "
            f"file that needs more may run code when loaded, so it is refused): {error}"
        ) from None


def _is_incomplete(path: Path, error: Exception) -> bool:
    """A truncated or damaged file (not a zip archive torch can read), as opposed to a pickle refused for safety."""
    if isinstance(error, pickle.UnpicklingError) and "weights_only" in str(error).lower():
        return False  # a complete file whose pickle asks for more than tensors and plain data
    try:
        return not zipfile.is_zipfile(path) or "PytorchStreamReader" in str(error)
    except OSError:
        return True


def best_checkpoint_in(folder: Path, monitor: str) -> tuple[str, float]:
    """The checkpoint of `folder` with the best `monitor` score, as recorded inside each (by the ModelCheckpoint
    that saved it), and that score; for a run dir whose ModelCheckpoint state points elsewhere (moved or copied)."""
    scores = {}
    for path in folder.glob("*.ckpt"):
        for key, state in load_checkpoint(path).get("callbacks", {}).items():
            saved_best = Path(state.get("best_model_path") or "").name == path.name  # this file was the best
            if f"'monitor': '{monitor}'" in key and saved_best and state.get("best_model_score") is not None:
                scores[str(path)] = float(state["best_model_score"])
    if not scores:
        raise FileNotFoundError(
            f"{folder} holds no checkpoint saved as the best by {monitor}: nothing to test; re-run without ckpt_path"
        )
    best = max(scores, key=scores.get)
    log.info("Best checkpoint by %s read from %s: %s (%.4f)", monitor, folder, best, scores[best])
    return best, scores[best]


class SafeCheckpointIO(TorchCheckpointIO):
    """Writes checkpoints atomically and reads them with ``weights_only=True`` only.

    Lightning 2.6 writes through an fsspec transaction: ``torch.save`` into a file made by ``tempfile.mkstemp()`` in
    the system temp folder, then ``shutil.move`` onto the target. When the temp folder is on another file system than
    the run dir (a tmpfs ``/tmp``, a network or scratch disk for outputs) that move is a copy into the target, so a
    kill or a full disk during it leaves a half-written ``last.ckpt`` that the next ``ckpt_path=auto`` cannot load;
    nothing is fsynced, and a killed save leaves its temp file behind in ``/tmp``. Here the temporary file lives
    beside the target (same file system, so ``os.replace`` is atomic), is fsynced before the rename, and is removed
    on failure.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("SafeCheckpointIO.save_checkpoint takes no storage_options")
        path = Path(path)
        for stale in path.parent.glob(f"{temporary_name_prefix(path)}*.tmp"):  # left by a save that was killed
            stale.unlink(missing_ok=True)
        try:
            with atomic_file(path, "wb") as file:
                torch.save(checkpoint, file)
        except BaseException as error:
            if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
                raise OSError(
                    error.errno,
                    f"cannot write checkpoint {path} ({error.strerror}); the previous checkpoint there is intact: "
                    "free space (or make the folder writable), then re-run the same command with ckpt_path=auto "
                    "to resume from it",
                ) from error
            raise

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        if weights_only is False:
            raise ValueError(f"refusing to load {path} with weights_only=False: checkpoints may not carry code")
        if not Path(path).is_file():
            raise FileNotFoundError(f"Checkpoint file not found: {path}")
        return load_checkpoint(Path(path), map_location=map_location)


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
