"""Owns evaluating a checkpoint on labelled images: which images (a split of the checkpoint's run, or every image of
a labelled folder), the metrics (torchmetrics), the files eval writes, and the plots written at the end of a run.

``eval.py`` calls :func:`evaluate`; ``run.py`` calls :func:`write_run_plots`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table
from rich.text import Text
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from transferlab.bad_images import BAD_IMAGES_FILE, SKIPPED_FILE, bad_images_error, resolve_verify, write_skipped_csv
from transferlab.files import atomic_write_csv, atomic_write_json
from transferlab.images import read_rgb
from transferlab.inference import (
    PLAIN,
    Predictions,
    check_tta,
    checkpoint_file,
    load_classifier,
    predict_files,
    preprocessed_image,
    run_dir_of,
    tta_views,
)
from transferlab.layouts import dataset_root, scan_folder
from transferlab.module import ImageClassifier
from transferlab.plots import (
    RIGHT,
    WRONG,
    plot_confusion_matrix,
    plot_image_grid,
    plot_learning_curves,
    read_epoch_logs,
)
from transferlab.resolvers import eval_split
from transferlab.splits import SPLITS, SampleTable, missing_files, read_splits_csv
from transferlab.transforms import build_train_transform

log = logging.getLogger(__name__)

SPLIT_CHOICES = (*SPLITS, "all")
PLOTS_DIR = "plots"
# The overall figures of compute_metrics; with tta=true, metrics.json keeps them without TTA as well, under "no_tta".
SUMMARY_METRICS = ("acc", "precision", "recall", "f1", "acc_top5")


@dataclass
class LabelledImages:
    root: Path
    paths: list[str]  # relative to root
    labels: list[str]  # class names


def run_data_root(run_dir: Path) -> Path:
    """The folder a run's images are relative to, from its Hydra ``.hydra/config.yaml`` (``data.root``, else the
    label file's folder, else the demo's: the rule of ``layouts.dataset_root``).
    """
    config_file = run_dir / ".hydra" / "config.yaml"
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file} does not exist: pass data.root=<the folder the run trained on>")
    try:
        data = OmegaConf.select(OmegaConf.load(config_file), "data", throw_on_resolution_failure=True)
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
    splits_file = None if run_dir is None else run_dir / "splits.csv"
    if splits_file is None or not splits_file.is_file():
        raise FileNotFoundError(
            f"split={split} needs the splits.csv of the checkpoint's run, and {splits_file or 'it'} does not exist: "
            "leave split= out to evaluate every image of data.root=<folder>"
        )
    samples = read_splits_csv(splits_file, root).part(split)
    if not len(samples):
        raise ValueError(f"{splits_file} has no {split} images: choose another split=")
    return LabelledImages(root, samples.paths.tolist(), samples.label_names())


def compute_metrics(probs: torch.Tensor, targets: torch.Tensor, class_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro precision/recall/F1, per-class precision/recall/F1/support and the confusion matrix.

    ``f1`` is the same macro F1 that training logs as ``test/f1``.
    """
    n = len(class_names)
    metrics: dict[str, Any] = {
        "acc": MulticlassAccuracy(n, average="micro")(probs, targets).item(),
        "precision": MulticlassPrecision(n, average="macro")(probs, targets).item(),
        "recall": MulticlassRecall(n, average="macro")(probs, targets).item(),
        "f1": MulticlassF1Score(n, average="macro")(probs, targets).item(),
    }
    if n > 5:
        metrics["acc_top5"] = MulticlassAccuracy(n, top_k=5, average="micro")(probs, targets).item()
    per_class = {
        name: MetricClass(n, average=None)(probs, targets).tolist()
        for name, MetricClass in (
            ("precision", MulticlassPrecision),
            ("recall", MulticlassRecall),
            ("f1", MulticlassF1Score),
        )
    }
    confusion = MulticlassConfusionMatrix(n)(probs, targets)
    support = confusion.sum(dim=1).tolist()
    metrics["per_class"] = {
        name: {**{key: values[i] for key, values in per_class.items()}, "support": support[i]}
        for i, name in enumerate(class_names)
    }
    metrics["confusion_matrix"] = confusion.tolist()
    return metrics


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate the checkpoint ``cfg.ckpt_path`` and write metrics.json, per_class.csv, predictions.csv, plots/.

    The images: ``cfg.split`` of the checkpoint's run (``<run_dir>/checkpoints/x.ckpt``), or every image of the
    labelled folder ``cfg.data.root``. Everything goes to ``cfg.paths.output_dir`` (``<run_dir>/eval/<split>`` from
    ``eval.py``). The per-class table is printed too.

    ``cfg.tta``: the metrics, predictions.csv and plots come from the softmax averaged over test-time augmented views
    (see :func:`~transferlab.inference.tta_views`); metrics.json keeps the plain figures under ``no_tta``.
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
        views=tta_views(model, ckpt_path) if tta else PLAIN,
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
            len(unreadable),
            len(images.paths),
            output_dir / SKIPPED_FILE,
            ", ".join(list(unreadable)[:10]),
        )
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
    atomic_write_json(output_dir / "metrics.json", metrics)
    write_per_class_csv(output_dir / "per_class.csv", metrics["per_class"])
    relative = [p.relative_to(images.root).as_posix() for p in predictions.paths]
    write_predictions_csv(output_dir / "predictions.csv", relative, predictions.probs, targets, model.class_names)
    print_per_class(metrics, f"{ckpt_path.name} on {split} of {images.root}")
    if cfg.plots.enabled:
        plots = output_dir / PLOTS_DIR
        name = run_dir.name if run_dir is not None else ckpt_path.stem
        title = f"{name}: {split} ({len(targets)} images)"
        plot_confusion_matrix(metrics["confusion_matrix"], model.class_names, plots / "confusion_matrix.png", title)
        plot_worst_predictions(model, predictions.paths, predictions.probs, targets, plots, cfg.plots.worst)
        plot_prediction_samples(model, predictions.paths, predictions.probs, targets, plots, cfg.plots.samples)
        series = read_epoch_logs(run_dir) if run_dir is not None else {}
        if series:
            curves = plots / "learning_curves.png"
            plot_learning_curves(series, curves, run_dir.name, unfreeze_epoch=unfreeze_epoch(model))
    log.info(
        "%s on %s (%d images): accuracy %.4f, macro F1 %.4f%s; wrote %s",
        ckpt_path.name,
        split,
        len(targets),
        metrics["acc"],
        metrics["f1"],
        f" with TTA (without: accuracy {plain['acc']:.4f}, macro F1 {plain['f1']:.4f})" if tta else "",
        output_dir,
    )
    return metrics


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


def unfreeze_epoch(model: ImageClassifier) -> int | None:
    """The epoch the backbone unfreezes in a two-stage run (``strategy.freeze_epochs`` > 0), else None."""
    strategy = model.strategy
    return strategy.freeze_epochs if strategy.name == "finetune" and strategy.freeze_epochs > 0 else None


def write_per_class_csv(path: Path, per_class: dict[str, dict[str, float]]) -> Path:
    rows = [
        [name, f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1']:.4f}", row["support"]]
        for name, row in per_class.items()
    ]
    return atomic_write_csv(path, ["class", "precision", "recall", "f1", "support"], rows)


def write_predictions_csv(
    path: Path, paths: Sequence[str], probs: torch.Tensor, targets: torch.Tensor, class_names: Sequence[str]
) -> Path:
    """One row per image: path, true class, predicted class, its probability, the true class's probability."""
    confidence, predicted = probs.max(dim=1)
    true_prob = probs.gather(1, targets[:, None])[:, 0]
    rows = []
    for i, image in enumerate(paths):
        p, t = int(predicted[i]), int(targets[i])
        rows.append([image, class_names[t], class_names[p], f"{confidence[i]:.4f}", f"{true_prob[i]:.4f}", int(p == t)])
    header = ["path", "true", "predicted", "probability", "true_probability", "correct"]
    return atomic_write_csv(path, header, rows)


def plot_worst_predictions(
    model: ImageClassifier,
    paths: Sequence[Path],
    probs: torch.Tensor,
    targets: torch.Tensor,
    plots_dir: Path,
    count: int,
) -> Path | None:
    """The ``count`` images whose true class got the lowest probability, as the network saw them."""
    if count <= 0 or not len(paths):
        return None
    true_prob = probs.gather(1, targets[:, None])[:, 0]
    order = true_prob.argsort()[:count].tolist()
    title = "Lowest probability for the truth"
    return _prediction_grid(model, paths, probs, targets, order, plots_dir / "worst_predictions.png", title, true=True)


def plot_prediction_samples(
    model: ImageClassifier,
    paths: Sequence[Path],
    probs: torch.Tensor,
    targets: torch.Tensor,
    plots_dir: Path,
    count: int,
) -> Path | None:
    """A fixed random sample of ``count`` evaluated images with their predictions."""
    if count <= 0 or not len(paths):
        return None
    order = sorted(random.Random(0).sample(range(len(paths)), min(count, len(paths))))
    return _prediction_grid(model, paths, probs, targets, order, plots_dir / "samples.png", "Predictions")


def _prediction_grid(
    model: ImageClassifier,
    paths: Sequence[Path],
    probs: torch.Tensor,
    targets: torch.Tensor,
    order: list[int],
    path: Path,
    title: str,
    *,
    true: bool = False,
) -> Path:
    """Each image titled ``true → predicted`` and a probability: of the true class with ``true`` (the sort key of
    the worst predictions), else of the predicted class."""
    names = model.class_names
    images, titles, colours = [], [], []
    for i in order:
        predicted = int(probs[i].argmax())
        truth = int(targets[i])
        images.append(preprocessed_image(model, paths[i]).permute(1, 2, 0).numpy())  # uint8 CHW -> HxWx3
        shown = f"p(true)={probs[i, truth]:.2f}" if true else f"p={probs[i, predicted]:.2f}"
        titles.append(f"{names[truth]} → {names[predicted]}\n{shown}")
        colours.append(RIGHT if predicted == truth else WRONG)
    return plot_image_grid(images, titles, path, colours=colours, title=f"{title} (true → predicted)")


def write_run_plots(
    output_dir: Path,
    model: ImageClassifier,
    root: Path,
    samples: SampleTable,
    metrics: dict[str, Any],
    *,
    augment: dict[str, Any],
    worst: int,
    training_samples: int,
    test_predictions: Predictions | None = None,
) -> list[Path]:
    """The end-of-training figures in ``<run_dir>/plots``: learning curves, test confusion matrix, the worst test
    predictions of ``model`` (the best checkpoint's weights), a sample of its test predictions (``samples.png``, as
    eval.py draws it), and training images as augmented.
    """
    plots = output_dir / PLOTS_DIR
    written = []
    series = read_epoch_logs(output_dir)
    if series:
        curves = plots / "learning_curves.png"
        written.append(plot_learning_curves(series, curves, output_dir.name, unfreeze_epoch=unfreeze_epoch(model)))
    names = model.class_names
    written.append(plot_confusion_matrix(metrics["test_confusion_matrix"], names, plots / "confusion_matrix.png"))
    test = samples.part("test")
    if (worst > 0 or training_samples > 0) and len(test):
        paths = [root / path for path in test.paths]
        # The run's own test pass when given (run.py writes predictions.csv from it), else one here.
        predictions = test_predictions or predict_files(model, paths)  # leaves unreadable files out
        label_of = dict(zip(paths, test.labels.tolist(), strict=True))
        targets = torch.tensor([label_of[p] for p in predictions.paths])
        found = (predictions.paths, predictions.probs, targets, plots)
        written.append(plot_worst_predictions(model, *found, worst))
        written.append(plot_prediction_samples(model, *found, training_samples))
    train = samples.part("train")
    if training_samples > 0 and len(train):
        written.append(
            plot_training_samples(model, root, train, plots / "training_samples.png", training_samples, augment)
        )
    return [p for p in written if p is not None]


def plot_training_samples(
    model: ImageClassifier,
    root: Path,
    train: SampleTable,
    path: Path,
    count: int,
    augment: dict[str, Any],
) -> Path | None:
    """A fixed random sample of training images after the run's augmentation, un-normalised for display."""
    pre = model.hparams.preprocessing
    transform = build_train_transform(image_size=pre["image_size"], resize_ratio=pre["resize_ratio"], **augment)
    transform.set_random_seed(0)
    chosen = random.Random(0).sample(range(len(train)), min(count, len(train)))
    images, titles = [], []
    for sample in map(train.__getitem__, chosen):
        try:
            image = read_rgb(root / sample.path)
        except (OSError, ValueError) as error:
            log.warning("Training-sample grid skips %s: %s", sample.path, error)
            continue
        images.append(transform(image=image)["image"].permute(1, 2, 0).numpy())  # uint8 CHW -> HxWx3
        titles.append(sample.label)
    if not images:
        return None
    return plot_image_grid(images, titles, path, title="Training images as augmented")
