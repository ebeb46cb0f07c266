"""What experiment trackers (``logger=mlflow``, ``logger=wandb``, TensorBoard, CSV) receive beyond Lightning's own
logging: the whole resolved config, flattened, before training; at the end, the final figures of ``metrics.json``,
and the run's files (``metrics.json``, ``plots/*.png``) as artifacts where the tracker stores files.

Lightning gives a logger the module's hyper-parameters only (backbone, strategy, optimizer): not the data root,
image size, augmentation, epochs or seed, which are what one filters runs by. Config keys are dotted as on the
command line (``data.root``, ``trainer.max_epochs``), so they never collide with Lightning's ``optimizer/lr``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import CSVLogger, Logger, MLFlowLogger, TensorBoardLogger, WandbLogger

from transferlab.nested import flatten
from transferlab.runs.layout import PLOTS_DIR

log = logging.getLogger(__name__)

FINAL_PREFIX = "final/"


def flat_config(cfg: DictConfig) -> dict[str, Any]:
    """``{"data.root": …, "trainer.max_epochs": …}``: every leaf of the resolved config; lists as their text."""
    leaves = flatten(OmegaConf.to_container(cfg, resolve=True))
    return {key: str(value) if isinstance(value, list | dict) else value for key, value in leaves.items()}


def log_config(loggers: Iterable[Logger], cfg: DictConfig) -> None:
    """Gives every logger the whole resolved config (see the module doc)."""
    loggers = list(loggers)
    if not loggers:
        return
    params = flat_config(cfg)
    for logger in loggers:
        logger.log_hyperparams(params)


def final_figures(metrics: dict[str, Any]) -> dict[str, float]:
    """The single numbers of ``metrics.json`` (test and best-val figures, epochs, seconds), as ``final/<name>``."""
    return {
        f"{FINAL_PREFIX}{key}": float(value)
        for key, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    }


def run_files(output_dir: Path, metrics_file: str) -> list[Path]:
    """The files a tracker should keep: ``metrics.json`` and every plot."""
    files = [output_dir / metrics_file, *sorted((output_dir / PLOTS_DIR).glob("*.png"))]
    return [path for path in files if path.is_file()]


def log_results(
    loggers: Iterable[Logger], metrics: dict[str, Any], files: list[Path], *, root: Path, step: int
) -> None:
    """The final figures to every logger but CSV (its run dir holds ``metrics.json``), and `files` (relative to
    `root`) as artifacts to MLflow and W&B. A tracker that fails here is logged, never fails the finished run."""
    figures = final_figures(metrics)
    for logger in loggers:
        try:
            if not isinstance(logger, CSVLogger):
                logger.log_metrics(figures, step=step)
            if isinstance(logger, MLFlowLogger):
                for path in files:
                    folder = path.parent.relative_to(root).as_posix()
                    logger.experiment.log_artifact(logger.run_id, str(path), None if folder == "." else folder)
            elif isinstance(logger, WandbLogger):
                for path in files:
                    logger.experiment.save(str(path), base_path=str(root), policy="now")
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.flush()
        except Exception as error:  # the run has finished and its files are written: report, go on
            log.warning("%s could not record the run's results: %s", type(logger).__name__, error)
