"""The names inside a run directory (``hydra.run.dir``), in one place, importing nothing heavy.

Every module that reads or writes a run's files takes the names from here, and so can the entry scripts' fast paths
(resume checks, skipping a finished run) that must answer before torch is imported.
"""

from __future__ import annotations

from pathlib import Path

CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = Path(CHECKPOINT_DIR) / "last.ckpt"
METRICS_FILE = "metrics.json"
SPLITS_FILE = "splits.csv"
LOG_FILE = "train.log"  # Hydra's job log, named after the job (train.py)
HYDRA_DIR = ".hydra"  # Hydra's config.yaml, hydra.yaml and overrides.yaml of the launch that started the run
CONFIG_FILE = Path(HYDRA_DIR) / "config.yaml"
RESUME_PREFIX = "resume-"  # .hydra/resume-<n>/: the config and overrides of the n-th resumed launch


def run_dir_of(ckpt_path: str | Path) -> Path | None:
    """The training run a checkpoint belongs to: ``<run_dir>`` for ``<run_dir>/checkpoints/<name>.ckpt``, else None."""
    path = Path(ckpt_path).expanduser()
    return path.parent.parent if path.parent.name == CHECKPOINT_DIR else None
