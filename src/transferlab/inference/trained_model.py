"""Owns a trained checkpoint as the commands meet it: ``ckpt_path`` checked, a run's best or last checkpoint found,
the model loaded, and what its run trained with when the checkpoint itself does not say (rot90, for TTA).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from transferlab.runs.layout import (
    BEST_CHECKPOINT_GLOB,
    CHECKPOINT_DIR,
    CONFIG_FILE,
    LAST_CHECKPOINT,
    read_config,
    read_metrics,
    run_dir_of,
)
from transferlab.training.classifier import ImageClassifier

log = logging.getLogger(__name__)


def checkpoint_file(ckpt_path: str | Path | None) -> Path:
    """``ckpt_path`` of eval/predict/export, checked: it must name an existing checkpoint file."""
    if ckpt_path is None or str(ckpt_path) in ("", "???"):
        raise ValueError(
            "ckpt_path is required: pass ckpt_path=<run_dir>/checkpoints/best-….ckpt (any .ckpt written by train.py)"
        )
    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"ckpt_path={ckpt_path}: no such checkpoint file; pass the path of a .ckpt file, e.g. "
            "<run_dir>/checkpoints/best-….ckpt"
        )
    return path


def find_checkpoint(run_dir: str | Path, ckpt: str = "best") -> Path:
    """The checkpoint file of a training run, for code that holds a run dir (notebooks, tests).

    Args:
        run_dir: the run's output folder (it holds ``checkpoints/``).
        ckpt: ``"best"`` (the best-by-val/acc checkpoint), ``"last"``, or the path of a ``.ckpt`` file.
    """
    run_dir = Path(run_dir).expanduser()
    if ckpt not in ("best", "last"):
        path = Path(ckpt).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"ckpt={ckpt}: no such checkpoint file; use ckpt=best, ckpt=last or a .ckpt path")
        return path
    folder = run_dir / CHECKPOINT_DIR
    if not folder.is_dir():
        raise FileNotFoundError(
            f"run_dir={run_dir} has no {CHECKPOINT_DIR}/ folder: point run_dir at the output folder of a train.py run"
        )
    if ckpt == "last":
        path = run_dir / LAST_CHECKPOINT
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: use ckpt=best or ckpt=<path to a .ckpt file>")
        return path
    candidates = sorted(folder.glob(BEST_CHECKPOINT_GLOB))
    if len(candidates) > 1:
        # metrics.json names the one the run tested; the others are left over from an earlier attempt.
        metrics = read_metrics(run_dir, missing="none")
        named = Path(metrics["best_ckpt"]).name if metrics and metrics.get("best_ckpt") else None
        candidates = [c for c in candidates if c.name == named] or candidates
    if len(candidates) != 1:
        found = [c.name for c in candidates] or "none"
        raise FileNotFoundError(
            f"expected one {BEST_CHECKPOINT_GLOB} in {folder}, found {found}: pass ckpt=<path to a .ckpt file> to "
            "choose"
        )
    return candidates[0]


def load_classifier(ckpt_path: str | Path) -> ImageClassifier:
    """The model of a checkpoint, on the CPU, in eval mode; nothing but the checkpoint is needed."""
    model = ImageClassifier.load_from_checkpoint(ckpt_path, map_location="cpu", weights_only=True)
    return model.eval()


def trained_with_rot90(model: ImageClassifier, ckpt_path: str | Path | None = None) -> bool:
    """Whether the model's run trained with rotations by 90° (``augment.rot90`` > 0).

    The checkpoint's own ``augment`` hparam says it; a checkpoint without one (saved before it was kept) is asked
    of its run's saved config (``<run_dir>/.hydra/config.yaml``) when ``ckpt_path`` lies in a run's ``checkpoints/``;
    otherwise it counts as trained without.
    """
    augment = model.hparams.get("augment")
    if augment is None and ckpt_path is not None:
        augment = _run_augment(ckpt_path)
    return bool(augment) and float(augment.get("rot90") or 0) > 0


def _run_augment(ckpt_path: str | Path) -> dict[str, Any] | None:
    run_dir = run_dir_of(ckpt_path)
    config = None if run_dir is None else read_config(run_dir)
    if config is None:
        return None
    try:
        augment = OmegaConf.select(config, "augment", throw_on_resolution_failure=True)
        return OmegaConf.to_container(augment, resolve=True) if augment is not None else None
    except Exception as error:  # an interpolation that only resolves inside the training job
        log.warning("Cannot read augment of %s (%s): TTA leaves out the rot90 views", run_dir / CONFIG_FILE, error)
        return None
