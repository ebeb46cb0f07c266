"""Owns the figures drawn from a model's predictions: grids of images with their predicted and true classes (the
worst predictions, a fixed sample), training images as augmented, and the end-of-run set in ``<run_dir>/plots``.

The drawing itself (matplotlib) is ``charts.py``'s; this module chooses the images and titles.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from transferlab.data.augment import Augment
from transferlab.data.images import read_rgb
from transferlab.data.samples import SampleTable
from transferlab.inference.image_files import Predictions, model_preprocessing, preprocessed_image
from transferlab.reports.charts import (
    RIGHT,
    WRONG,
    plot_confusion_matrix,
    plot_image_grid,
    plot_learning_curves,
    read_epoch_logs,
)
from transferlab.reports.fonts import label_fonts
from transferlab.runs.layout import PLOTS_DIR
from transferlab.training.classifier import ImageClassifier

log = logging.getLogger(__name__)


def worst_order(probs: torch.Tensor, targets: torch.Tensor, count: int) -> list[int]:
    """The ``count`` rows whose true class got the lowest probability, lowest first."""
    return probs.gather(1, targets[:, None])[:, 0].argsort()[:count].tolist()


def sample_order(total: int, count: int) -> list[int]:
    """A fixed random sample of ``count`` of ``total`` rows, in row order."""
    return sorted(random.Random(0).sample(range(total), min(count, total)))


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
    fonts = label_fonts(model.class_names)
    names = fonts.labels
    images, titles, colours = [], [], []
    for i in order:
        predicted = int(probs[i].argmax())
        truth = int(targets[i])
        images.append(preprocessed_image(model, paths[i]).permute(1, 2, 0).numpy())  # uint8 CHW -> HxWx3
        shown = f"p(true)={probs[i, truth]:.2f}" if true else f"p={probs[i, predicted]:.2f}"
        titles.append(f"{names[truth]} → {names[predicted]}\n{shown}")
        colours.append(RIGHT if predicted == truth else WRONG)
    note = f"\n{fonts.note()}" if fonts.undrawn else ""
    return plot_image_grid(images, titles, path, colours=colours, title=f"{title} (true → predicted){note}")


def plot_predictions(
    model: ImageClassifier, predictions: Predictions, targets: torch.Tensor, plots: Path, *, worst: int, samples: int
) -> list[Path]:
    """``worst_predictions.png`` (the ``worst`` images whose true class got the lowest probability, labelled with
    that probability) and ``samples.png`` (a fixed random sample of ``samples`` images), drawn as the network saw
    them; a count of 0 draws no grid."""
    found = (predictions.paths, predictions.probs, targets)
    drawn = []
    if worst > 0 and len(targets):
        order = worst_order(predictions.probs, targets, worst)
        title = "Lowest probability for the truth"
        drawn.append(_prediction_grid(model, *found, order, plots / "worst_predictions.png", title, true=True))
    if samples > 0 and len(targets):
        order = sample_order(len(targets), samples)
        drawn.append(_prediction_grid(model, *found, order, plots / "samples.png", "Predictions"))
    return drawn


def plot_learning_curves_of(run_dir: Path, model: ImageClassifier, plots: Path) -> Path | None:
    """``learning_curves.png`` of a run from its logged epochs, a dashed line where (a stage of) the backbone starts
    training, as the model's strategy says; None when the run logged no epoch."""
    series = read_epoch_logs(run_dir)
    if not series:
        return None
    epochs = model.strategy.unfreeze_epochs(model.backbone.stage_names)
    return plot_learning_curves(series, plots / "learning_curves.png", run_dir.name, unfreeze_epochs=epochs)


def write_run_plots(
    output_dir: Path,
    model: ImageClassifier,
    root: Path,
    samples: SampleTable,
    metrics: dict[str, Any],
    test_predictions: Predictions,
    *,
    augment: Augment,
    worst: int,
    training_samples: int,
) -> list[Path]:
    """The end-of-training figures in ``<run_dir>/plots``: learning curves, test confusion matrix, the worst test
    predictions of ``model`` (the best checkpoint's weights; ``test_predictions`` is its test pass), a sample of its
    test predictions (``samples.png``, as eval.py draws it), and training images as augmented.
    """
    plots = output_dir / PLOTS_DIR
    written = [plot_learning_curves_of(output_dir, model, plots)]
    names = model.class_names
    written.append(plot_confusion_matrix(metrics["test_confusion_matrix"], names, plots / "confusion_matrix.png"))
    test = samples.part("test")
    if (worst > 0 or training_samples > 0) and len(test):
        label_of = dict(zip((root / path for path in test.paths), test.labels.tolist(), strict=True))
        targets = torch.tensor([label_of[p] for p in test_predictions.paths])
        written += plot_predictions(model, test_predictions, targets, plots, worst=worst, samples=training_samples)
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
    augment: Augment,
) -> Path | None:
    """A fixed random sample of training images after the run's augmentation (uint8, before normalisation)."""
    transform = model_preprocessing(model).train_transform(augment)
    transform.set_random_seed(0)
    chosen = random.Random(0).sample(range(len(train)), min(count, len(train)))
    fonts = label_fonts(train.class_names)
    images, titles = [], []
    for sample in map(train.__getitem__, chosen):
        try:
            image = read_rgb(root / sample.path)
        except (OSError, ValueError) as error:
            log.warning("Training-sample grid skips %s: %s", sample.path, error)
            continue
        images.append(transform(image=image)["image"].permute(1, 2, 0).numpy())  # uint8 CHW -> HxWx3
        titles.append(fonts.labels[train.class_names.index(sample.label)])
    if not images:
        return None
    note = f"\n{fonts.note()}" if fonts.undrawn else ""
    return plot_image_grid(images, titles, path, title=f"Training images as augmented{note}")
