"""The evaluation command (``eval.py``): a checkpoint on labelled images, either a split of the checkpoint's run or
every image of a labelled folder; writes metrics.json, per_class.csv, predictions.csv and plots/, and prints the
per-class table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table
from rich.text import Text

from transferlab.data.bad_images import bad_images_error, resolve_verify, write_skipped_csv
from transferlab.data.layouts import dataset_root, scan_folder
from transferlab.data.samples import SPLITS
from transferlab.data.splits import missing_files, read_splits_csv
from transferlab.inference.image_files import Predictions, predict_files
from transferlab.inference.metrics import SUMMARY_METRICS, compute_metrics, write_per_class_csv, write_predictions_csv
from transferlab.inference.trained_model import checkpoint_file, load_classifier
from transferlab.inference.tta import PLAIN, check_tta, tta_views
from transferlab.launch.resolvers import eval_split
from transferlab.reports.charts import plot_confusion_matrix
from transferlab.reports.run_plots import plot_learning_curves_of, plot_predictions
from transferlab.runs.layout import (
    BAD_IMAGES_FILE,
    CONFIG_FILE,
    PER_CLASS_FILE,
    PLOTS_DIR,
    PREDICTIONS_FILE,
    SKIPPED_FILE,
    SPLITS_FILE,
    read_config,
    read_metrics,
    run_dir_of,
    write_metrics,
)
from transferlab.training.classifier import ImageClassifier

log = logging.getLogger(__name__)

SPLIT_CHOICES = (*SPLITS, "all")


@dataclass
class LabelledImages:
    root: Path
    paths: list[str]  # relative to root
    labels: list[str]  # class names


def run_data_root(run_dir: Path) -> Path:
    """The folder a run's images are relative to: the ``data_root`` its metrics.json recorded where it trained; for a
    run without one (unfinished, or older), its saved ``.hydra/config.yaml`` resolved by ``layouts.dataset_root``'s
    rule (``data.root``, else the label file's folder, else the demo's).
    """
    try:
        recorded = (read_metrics(run_dir) or {}).get("data_root")
    except ValueError:
        recorded = None
    if recorded:
        return Path(recorded)
    config_file, config = run_dir / CONFIG_FILE, read_config(run_dir)
    if config is None:
        raise FileNotFoundError(f"{config_file} does not exist: pass data.root=<the folder the run trained on>")
    try:
        data = OmegaConf.select(config, "data", throw_on_resolution_failure=True)
        labels_file = data.get("labels_file")
        demo_root = OmegaConf.select(data, "demo.root", throw_on_resolution_failure=True)
        return dataset_root(data.get("root"), labels_file=labels_file, demo_root=demo_root)
    except Exception as error:  # an interpolation that only resolves inside the training job, or no root at all
        raise ValueError(f"cannot tell data.root of {config_file} ({error}): pass data.root=<folder>") from None


def select_images(run_dir: Path | None, split: str | None, data_root: str | Path | None) -> LabelledImages:
    """The images eval sees.

    Args:
        run_dir: the checkpoint's run (None for a checkpoint outside a run's ``checkpoints/`` folder).
        split: ``train``/``val``/``test``: that split of the run's ``splits.csv``; ``all``: every image under the
            root; None: ``all`` when ``data_root`` is given, else ``test``.
        data_root: a labelled folder (one subfolder per class); default: the run's ``data.root``.
    """
    split = eval_split(split, data_root)
    if split not in SPLIT_CHOICES:
        raise ValueError(f"split={split!r} must be one of {', '.join(SPLIT_CHOICES)}")
    if run_dir is None and not data_root:
        raise ValueError(
            "the checkpoint (ckpt_path) is not inside a run's checkpoints/ folder, so there is no run data to "
            "evaluate: pass data.root=<a labelled folder> (one subfolder per class)"
        )
    root = Path(data_root).expanduser() if data_root else run_data_root(run_dir)
    if split == "all":
        table = scan_folder(root)
        return LabelledImages(root, table.paths.tolist(), table.label_names())
    splits_file = None if run_dir is None else run_dir / SPLITS_FILE
    if splits_file is None or not splits_file.is_file():
        raise FileNotFoundError(
            f"split={split} needs the splits.csv of the checkpoint's run, and {splits_file or 'it'} does not exist: "
            "leave split= out to evaluate every image of data.root=<folder>"
        )
    samples = read_splits_csv(splits_file, root).part(split)
    if not len(samples):
        raise ValueError(f"{splits_file} has no {split} images: choose another split=")
    return LabelledImages(root, samples.paths.tolist(), samples.label_names())


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate the checkpoint ``cfg.ckpt_path`` and write metrics.json, per_class.csv, predictions.csv, plots/.

    The images: ``cfg.split`` of the checkpoint's run (``<run_dir>/checkpoints/x.ckpt``), or every image of the
    labelled folder ``cfg.data.root``. Everything goes to ``cfg.paths.output_dir`` (``<run_dir>/eval/<split>`` from
    ``eval.py``). The per-class table is printed too.

    ``cfg.tta``: the metrics, predictions.csv and plots come from the softmax averaged over test-time augmented views
    (see :func:`~transferlab.inference.tta.tta_views`); metrics.json keeps the plain figures under ``no_tta``.
    """
    tta = check_tta(cfg.tta)
    ckpt_path = checkpoint_file(cfg.ckpt_path)
    run_dir = run_dir_of(ckpt_path)
    output_dir = Path(cfg.paths.output_dir)
    split = eval_split(cfg.split, cfg.data.root)
    model = load_classifier(ckpt_path)
    images = select_images(run_dir, split, cfg.data.root)
    unknown = sorted(set(images.labels) - set(model.class_names))
    if unknown:
        raise ValueError(
            f"{images.root} has classes {unknown} that {ckpt_path} was not trained on ({model.class_names}): "
            "evaluate on a folder (data.root=) whose class folders are among the model's classes"
        )
    views = tta_views(model, ckpt_path) if tta else PLAIN
    predictions = _predict_readable(cfg, model, images, split, output_dir, views)
    label_of = dict(zip((images.root / p for p in images.paths), images.labels, strict=True))
    class_index = {name: i for i, name in enumerate(model.class_names)}
    targets = torch.tensor([class_index[label_of[p]] for p in predictions.paths])
    metrics = {
        "checkpoint": str(ckpt_path),
        "split": split,
        "data_root": str(images.root),
        "num_images": len(predictions.paths),
        "unreadable": [str(p.relative_to(images.root)) for p in predictions.unreadable],
        "class_names": list(model.class_names),
        "tta": tta,
        **compute_metrics(predictions.probs, targets, model.class_names),
    }
    if tta:
        plain = compute_metrics(predictions.plain_probs, targets, model.class_names)
        metrics["tta_views"] = list(predictions.views)
        metrics["no_tta"] = {key: plain[key] for key in SUMMARY_METRICS if key in plain}
    write_metrics(output_dir, metrics, matrix_key="confusion_matrix")
    write_per_class_csv(output_dir / PER_CLASS_FILE, metrics["per_class"])
    relative = [p.relative_to(images.root).as_posix() for p in predictions.paths]
    write_predictions_csv(output_dir / PREDICTIONS_FILE, relative, predictions.probs, targets, model.class_names)
    print_per_class(metrics, f"{ckpt_path.name} on {split} of {images.root}")
    if cfg.plots.enabled:
        title = f"{run_dir.name if run_dir is not None else ckpt_path.stem}: {split} ({len(targets)} images)"
        _plot(cfg, model, run_dir, predictions, targets, metrics["confusion_matrix"], output_dir / PLOTS_DIR, title)
    without = f" with TTA (without: accuracy {plain['acc']:.4f}, macro F1 {plain['f1']:.4f})" if tta else ""
    log.info(
        "%s on %s (%d images): accuracy %.4f, macro F1 %.4f%s; wrote %s",
        *(ckpt_path.name, split, len(targets), metrics["acc"], metrics["f1"], without, output_dir),
    )
    return metrics


def _predict_readable(
    cfg: DictConfig,
    model: ImageClassifier,
    images: LabelledImages,
    split: str,
    output_dir: Path,
    views: tuple[str, ...],
) -> Predictions:
    """Predictions for the images that can be read; the others stop eval (data.bad_images=error) or are listed in
    skipped_images.csv (skip)."""
    bad_images = cfg.data.get("bad_images", "skip")
    resolve_verify(bad_images, "auto")  # checks the policy's name
    missing = missing_files(images.root, images.paths)
    if missing and bad_images == "error":
        raise bad_images_error(images.root, missing, output_dir / BAD_IMAGES_FILE)
    predictions = predict_files(
        model,
        [images.root / p for p in images.paths],
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        device=cfg.device,
        progress=len(images.paths) > cfg.batch_size,
        views=views,
    )
    if not predictions.paths:
        raise ValueError(f"none of the {len(images.paths)} {split} images under {images.root} could be read")
    if predictions.unreadable:
        unreadable = {str(p.relative_to(images.root)): "unreadable" for p in predictions.unreadable}
        unreadable |= {path: reason for path, reason in missing.items() if path in unreadable}
        if bad_images == "error":
            raise bad_images_error(images.root, unreadable, output_dir / BAD_IMAGES_FILE)
        write_skipped_csv(output_dir / SKIPPED_FILE, unreadable)
        log.warning(
            "%d of the %d images could not be read and were left out (data.bad_images=skip), listed in %s: %s",
            *(len(unreadable), len(images.paths), output_dir / SKIPPED_FILE, ", ".join(list(unreadable)[:10])),
        )
    return predictions


def _plot(
    cfg: DictConfig,
    model: ImageClassifier,
    run_dir: Path | None,
    predictions: Predictions,
    targets: torch.Tensor,
    confusion: list[list[int]],
    plots: Path,
    title: str,
) -> None:
    plot_confusion_matrix(confusion, model.class_names, plots / "confusion_matrix.png", title)
    plot_predictions(model, predictions, targets, plots, worst=cfg.plots.worst, samples=cfg.plots.samples)
    if run_dir is not None:
        plot_learning_curves_of(run_dir, model, plots)


def print_per_class(metrics: dict[str, Any], title: str) -> None:
    """The per-class precision, recall, F1 and support, then the overall accuracy and macro scores, as a table."""
    table = Table(title=title)
    table.add_column("class")
    for header in ("precision", "recall", "F1", "support"):
        table.add_column(header, justify="right")
    for name, row in metrics["per_class"].items():
        table.add_row(
            Text(name), f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"])
        )
    table.add_section()
    macro = [f"{metrics[key]:.3f}" for key in ("precision", "recall", "f1")]
    table.add_row("macro", *macro, str(metrics["num_images"]))
    table.caption = f"accuracy {metrics['acc']:.4f} on {metrics['num_images']} images"
    if metrics.get("tta"):
        views = len(metrics["tta_views"])
        table.caption += f"\nwith TTA ({views} views); {metrics['no_tta']['acc']:.4f} without"
    Console().print(table)
