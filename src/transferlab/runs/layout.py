"""Owns the run directory (``hydra.run.dir``): the name of every file and folder in it, and reading and writing its
``metrics.json``, whose keys :class:`RunMetrics` lists. It imports nothing heavy.

Every module that reads or writes a run's files takes the names from here, and so can the entry scripts' fast paths
(resume checks, skipping a finished run) that must answer before torch is imported. A run dir::

    .hydra/config.yaml, overrides.yaml    Hydra's record of the launch that started it (resume-<n>/: later ones)
    train.log                             the job log
    checkpoints/best-epochNNN.ckpt, last.ckpt
    logs/                                 Lightning's CSV logger (the epoch series the plots read)
    metrics.json  confusion_matrix.csv  splits.csv  predictions.csv  skipped_images.csv  lr_find.json
    plots/                                end-of-run figures
    eval/<split>/  predict/<time>/  export/   written beside the run by eval.py, predict.py, export.py
    error.txt                             the error of a failed launch (summary.csv reads it); error.resolved.txt
                                          once a later launch finished

A sweep dir holds one run dir per job and ``summary.csv``, ``summary_groups.csv``, ``report.md``, ``report.png``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from omegaconf import DictConfig, OmegaConf

from transferlab.files import atomic_write_csv, atomic_write_json, read_csv_rows
from transferlab.runs.legacy import upgrade_targets

CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = Path(CHECKPOINT_DIR) / "last.ckpt"
BEST_CHECKPOINT_GLOB = "best-*.ckpt"
METRICS_FILE = "metrics.json"
CONFUSION_FILE = "confusion_matrix.csv"  # the test confusion matrix, beside metrics.json (which names it)
CONFUSION_CORNER = "true \\ predicted"  # its first header cell: rows are true classes, columns predicted ones
SPLITS_FILE = "splits.csv"
PREDICTIONS_FILE = "predictions.csv"  # one row per test image; paired tests between runs read it
PER_CLASS_FILE = "per_class.csv"  # eval's per-class table
SKIPPED_FILE = "skipped_images.csv"  # images left out (data.bad_images=skip), with the reason
BAD_IMAGES_FILE = "bad_images.csv"  # data.bad_images=error: every bad file, when too many to name in the message
PLOTS_DIR = "plots"
LR_FIND_FILE = "lr_find.json"
LR_FIND_PLOT = Path(PLOTS_DIR) / "lr_find.png"
ERROR_FILE = "error.txt"
RESOLVED_ERROR_FILE = "error.resolved.txt"  # the last failure of a run dir that has since finished
LOG_FILE = "train.log"  # Hydra's job log, named after the job (train.py)
HYDRA_DIR = ".hydra"  # Hydra's config.yaml, hydra.yaml and overrides.yaml of the launch that started the run
CONFIG_FILE = Path(HYDRA_DIR) / "config.yaml"
OVERRIDES_FILE = Path(HYDRA_DIR) / "overrides.yaml"
RESUME_PREFIX = "resume-"  # .hydra/resume-<n>/: the config and overrides of the n-th resumed launch
LOCK_FILE = ".transferlab.lock"
OWNER_FILE = ".transferlab.lock.json"
# Beside a run, from its checkpoint (the hydra.run.dir of eval.py, predict.py and export.py).
EVAL_DIR = "eval"
PREDICT_DIR = "predict"
EXPORT_DIR = "export"
EXPORT_INFO_FILE = "model.json"
EXPORT_FILES = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt"}  # by export.py format
# In a sweep dir.
SUMMARY_FILE = "summary.csv"
GROUPS_FILE = "summary_groups.csv"
REPORT_FILE = "report.md"
REPORT_FIGURE_FILE = "report.png"


class RunMetrics(TypedDict):
    """``metrics.json`` of a run: what training (``train.py``) and the linear probe (``probe.py``) both write, and
    summary.csv, the report, resume and ``find_checkpoint`` read. Keys marked NotRequired are training's alone.
    Trainer.test adds its logged ``test_*`` figures (``test_loss``, ``test_precision``, …) beside these."""

    best_val_acc: float
    epochs: int | None  # None for the probe
    fit_seconds: float
    trainable_params: int
    test_acc: float
    test_f1: float
    test_per_class_acc: dict[str, float] | list[float]
    test_confusion_matrix: NotRequired[list[list[int]]]  # in memory; on disk in confusion_matrix.csv (inline before)
    test_confusion_matrix_file: NotRequired[str]  # "confusion_matrix.csv", beside metrics.json
    class_names: list[str]
    strategy: NotRequired[str]  # the probe's "linear_probe"; a training run's strategy is in its config
    weight_decay: NotRequired[float]  # the probe's chosen L2 strength
    best_ckpt: NotRequired[str]
    max_epochs: NotRequired[int]  # what the run was planned for: resume.finished() compares it
    data_root: NotRequired[str]  # resolved: data.root, the label file's folder, or the demo's
    skipped_images: NotRequired[int]
    test_n: NotRequired[int]
    test_acc_ci: NotRequired[list[float] | None]
    test_f1_ci: NotRequired[list[float] | None]


def write_metrics(
    run_dir: str | Path, metrics: RunMetrics | dict[str, Any], matrix_key: str = "test_confusion_matrix"
) -> Path:
    """``metrics.json`` in `run_dir`, with the confusion matrix at `matrix_key` in ``confusion_matrix.csv`` beside it
    (JSON would hold it one number per line: a million lines for 1,000 classes) and the file's name at
    ``<matrix_key>_file``. Eval's folder uses the same layout, with ``matrix_key="confusion_matrix"``."""
    metrics = dict(metrics)
    matrix = metrics.pop(matrix_key, None)
    if matrix is not None:
        names = metrics["class_names"]
        atomic_write_csv(
            Path(run_dir) / CONFUSION_FILE,
            (CONFUSION_CORNER, *names),
            ((name, *(int(n) for n in row)) for name, row in zip(names, matrix, strict=True)),
        )
        metrics[f"{matrix_key}_file"] = CONFUSION_FILE
    return atomic_write_json(Path(run_dir) / METRICS_FILE, metrics)


def read_confusion_matrix(run_dir: str | Path, metrics: dict[str, Any]) -> list[list[int]] | None:
    """The confusion matrix that `metrics` (the ``metrics.json`` of `run_dir`) names: read from its CSV file, or
    inline in the metrics of runs written before it had a file; None when there is none."""
    for key in ("test_confusion_matrix", "confusion_matrix"):
        if isinstance(metrics.get(key), list):
            return metrics[key]
        if metrics.get(f"{key}_file"):
            rows = read_csv_rows(Path(run_dir) / metrics[f"{key}_file"])  # keyed by the header: corner, then classes
            return [[int(n) for n in list(row.values())[1:]] for row in rows]
    return None


def retire_error(run_dir: str | Path) -> None:
    """A run that finished keeps the record of an earlier failed launch as ``error.resolved.txt``, so that
    summary.csv does not show a finished job with that failure."""
    error = Path(run_dir) / ERROR_FILE
    if error.is_file():
        error.replace(error.with_name(RESOLVED_ERROR_FILE))


def read_metrics(run_dir: str | Path) -> RunMetrics | None:
    """A run's ``metrics.json``; None when there is none (the run has not finished).

    Raises:
        ValueError: the file exists but cannot be read or parsed; the message names it.
    """
    path = Path(run_dir) / METRICS_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} unreadable: {error}") from None


def read_config(run_dir: str | Path) -> DictConfig | None:
    """A run's saved config (``.hydra/config.yaml``, unresolved, with the ``_target_`` paths of older versions
    upgraded: see ``legacy.py``), or None when it has none."""
    path = Path(run_dir) / CONFIG_FILE
    return upgrade_targets(OmegaConf.load(path)) if path.is_file() else None


def run_dir_of(ckpt_path: str | Path) -> Path | None:
    """The training run a checkpoint belongs to: ``<run_dir>`` for ``<run_dir>/checkpoints/<name>.ckpt``, else None."""
    path = Path(ckpt_path).expanduser()
    return path.parent.parent if path.parent.name == CHECKPOINT_DIR else None
