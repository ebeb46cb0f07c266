"""The training command (``train.py``): ``run(cfg)``, one training run from a composed config: data → model →
Trainer → fit → test(best) → metrics.json, predictions.csv, plots.

``train.py`` calls it under ``@hydra.main``; tests and sweeps call it the same way. It returns the run's metrics,
the value a Hydra sweeper optimises.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from pytorch_lightning import Trainer, seed_everything
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_only

from transferlab.backbones.weights import load_backbone_weights
from transferlab.data.datamodule import FolderDataModule
from transferlab.data.splits import write_splits_csv
from transferlab.files import check_output_dir
from transferlab.inference.image_files import Predictions, predict_files
from transferlab.inference.metrics import write_predictions_csv
from transferlab.launch.build import Settings, build_datamodule, build_model, build_trainer
from transferlab.launch.cli import ConfigError
from transferlab.launch.config_checks import validate
from transferlab.launch.resume import finished
from transferlab.launch.startup import prepare
from transferlab.reports.run_plots import write_run_plots
from transferlab.reports.stats import few_images_warning, test_intervals
from transferlab.runs.layout import (
    METRICS_FILE,
    PLOTS_DIR,
    PREDICTIONS_FILE,
    SPLITS_FILE,
    RunMetrics,
    read_metrics,
    retire_error,
    write_metrics,
)
from transferlab.runs.lock import hold_run_dir
from transferlab.training.checkpointing import best_checkpoint_in, checkpoint_space, resolve_ckpt_path
from transferlab.training.classifier import ImageClassifier
from transferlab.training.features import feature_extractor
from transferlab.training.lr_find import find_learning_rate
from transferlab.training.trackers import log_config, log_results, run_files

log = logging.getLogger(__name__)


def run(cfg: DictConfig, on_start: Callable[[], None] | None = None) -> dict[str, Any]:
    """Trains, tests and reports one run; `on_start` is called once every check has passed, before training (what
    train.py records of a resumed launch)."""
    prepare()  # the configs' resolvers, for callers that composed cfg themselves (tests, notebooks, sweeps)
    with hold_run_dir(cfg.paths.output_dir):  # one launch at a time per run dir
        return _run(cfg, on_start or (lambda: None))


def _run(cfg: DictConfig, on_start: Callable[[], None]) -> dict[str, Any]:
    output_dir = Path(cfg.paths.output_dir)
    if finished(cfg, output_dir):  # ckpt_path=auto of a finished run (not one raising trainer.max_epochs)
        log.info("%s exists: this run already finished, skipping it (ckpt_path=auto)", output_dir / METRICS_FILE)
        return read_metrics(output_dir)

    try:
        validate(cfg)
    except ValueError as error:  # the user's to fix: train.py prints the message alone (cli.config_errors)
        raise ConfigError(str(error)) from error
    seed_everything(cfg.seed, workers=True)
    ckpt_path = resolve_ckpt_path(cfg.ckpt_path, output_dir)

    settings = Settings.of(cfg)
    datamodule = build_datamodule(cfg, settings, output_dir, ckpt_path)
    rank_zero_only(write_splits_csv)(output_dir / SPLITS_FILE, datamodule.samples)

    model = build_model(cfg, settings, datamodule)
    try:
        check_output_dir(output_dir, need_bytes=checkpoint_space(model, output_dir))
    except OSError as error:  # refused: the user's to fix, and nothing of the run is touched (train.py)
        raise ConfigError(error.strerror or str(error)) from error  # strerror: the message without "[Errno 28]"
    on_start()
    if ckpt_path is None:
        # Fails here, before any training, when ImageNet weights cannot be downloaded.
        load_backbone_weights(model.backbone, cfg.model.weights)
    else:
        log.info("Resuming from %s", ckpt_path)

    trainer = build_trainer(cfg)
    if datamodule.cache_features:  # the frozen backbone's features, once per split, on the Trainer's device
        datamodule.use_feature_extractor(feature_extractor(model, trainer))
    log_config(trainer.loggers, cfg)  # the whole resolved config, flattened, to every tracker
    if cfg.tune.lr_find:
        if ckpt_path is None:
            find_learning_rate(
                trainer, model, datamodule, output_dir, **{k: v for k, v in cfg.tune.items() if k != "lr_find"}
            )
        else:  # the resumed optimizer state holds the rates found when the run started
            log.info("tune.lr_find skipped: resuming keeps the learning rates of %s", ckpt_path)
    started = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    fit_seconds = time.perf_counter() - started
    best, best_score = best_checkpoint(trainer)
    test_results = trainer.test(model, datamodule=datamodule, ckpt_path=best, weights_only=True)[0]

    metrics: RunMetrics = {
        "best_val_acc": float(best_score),
        "best_ckpt": str(best),
        "epochs": trainer.current_epoch,
        "max_epochs": trainer.max_epochs,  # what the run was planned for: resume.finished() compares it
        "fit_seconds": round(fit_seconds, 3),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        **{key.replace("/", "_"): float(value) for key, value in test_results.items()},
        "test_per_class_acc": model.test_report["per_class_acc"],
        "test_confusion_matrix": model.test_report["confusion_matrix"],
        "class_names": datamodule.class_names,
        # Absolute: data.root, the label file's folder or the demo's, as this process found it (a relative data.root
        # would name another folder for an eval launched elsewhere).
        "data_root": str(Path(datamodule.root).resolve()),
        "skipped_images": len(datamodule.skipped),
    }
    if trainer.is_global_zero:
        write_results(cfg, settings, output_dir, trainer, model, datamodule, metrics)
    return metrics


def best_checkpoint(trainer: Trainer) -> tuple[str, Any]:
    """The best checkpoint of the fit and its score."""
    checkpoint = trainer.checkpoint_callback
    never_validated = "val/acc" not in trainer.callback_metrics
    if isinstance(checkpoint, ModelCheckpoint) and not checkpoint.best_model_path and never_validated:
        # Lightning validates at the end of an epoch; a run stopped inside its first one never did.
        raise ValueError(
            f"the run ended at step {trainer.global_step} (trainer.max_steps={trainer.max_steps}, or "
            f"trainer.max_time) before its first validation (an epoch is {trainer.num_training_batches} steps), so "
            "no checkpoint could be chosen by val/acc. Let it run at least one epoch: raise "
            f"trainer.max_steps to {trainer.num_training_batches} or more, or set trainer.max_epochs instead."
        )
    if not isinstance(checkpoint, ModelCheckpoint) or not checkpoint.best_model_path:
        raise RuntimeError("Training produced no checkpoint: callbacks.model_checkpoint must stay enabled")
    best, best_score = checkpoint.best_model_path, checkpoint.best_model_score
    if best_score is None or Path(best).parent != Path(checkpoint.dirpath):
        # A run dir moved or copied since its last checkpoint: Lightning keeps the best path of the old folder and
        # drops its score. The best checkpoint is this run's own, in its checkpoints/ folder.
        best, best_score = best_checkpoint_in(Path(checkpoint.dirpath), checkpoint.monitor)
    return best, best_score


def write_results(
    cfg: DictConfig,
    settings: Settings,
    output_dir: Path,
    trainer: Trainer,
    model: ImageClassifier,
    datamodule: FolderDataModule,
    metrics: RunMetrics,
) -> None:
    """On the main process: predictions.csv and the test intervals, metrics.json, the plots, and the trackers' copy.

    ``model`` holds the best checkpoint's weights (trainer.test loaded them)."""
    predictions = predict_files(model, [datamodule.root / path for path in datamodule.samples.part("test").paths])
    metrics.update(write_test_predictions(output_dir, predictions, datamodule, seed=cfg.seed))
    write_metrics(output_dir, metrics)
    retire_error(output_dir)
    log.info(
        "Test accuracy %.4f, best val accuracy %.4f; wrote %s",
        *(metrics["test_acc"], metrics["best_val_acc"], output_dir / METRICS_FILE),
    )
    if cfg.plots.enabled:
        plots = write_run_plots(
            output_dir,
            model,
            datamodule.root,
            datamodule.samples,
            metrics,
            predictions,
            augment=settings.augment,
            worst=cfg.plots.worst,
            training_samples=cfg.plots.samples,
        )
        log.info("Wrote %d plots to %s", len(plots), output_dir / PLOTS_DIR)
    # Trackers (MLflow, W&B, TensorBoard) get the final figures, and metrics.json and the plots as artifacts.
    files = run_files(output_dir, METRICS_FILE)
    log_results(trainer.loggers, metrics, files, root=output_dir, step=trainer.global_step)


def write_test_predictions(
    output_dir: Path, predictions: Predictions, datamodule: FolderDataModule, *, seed: int
) -> dict[str, Any]:
    """``predictions.csv`` of the test split's `predictions` (what paired tests between runs read) and the
    intervals of the test figures (``stats.test_intervals``); warns when the test split is too small to rank on."""
    test = datamodule.samples.part("test")
    names = datamodule.class_names
    label_of = {datamodule.root / path: label for path, label in zip(test.paths, test.labels.tolist(), strict=True)}
    targets = torch.tensor([label_of[path] for path in predictions.paths], dtype=torch.long)
    relative = [str(path.relative_to(datamodule.root)) for path in predictions.paths]
    write_predictions_csv(output_dir / PREDICTIONS_FILE, relative, predictions.probs, targets, names)
    warning = few_images_warning(dict(zip(names, test.class_counts(), strict=True)))
    if warning:
        log.warning("Few test images: %s", warning)
    return test_intervals(targets.tolist(), predictions.probs.argmax(1).tolist(), len(names), seed=seed)
