"""Owns the figures of a set of predictions against the truth: accuracy, macro precision/recall/F1, per-class
figures and the confusion matrix (torchmetrics), and the two tables eval and training write from them,
``predictions.csv`` and ``per_class.csv``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from transferlab.files import atomic_write_csv

# The overall figures of compute_metrics; with tta=true, eval's metrics.json keeps them without TTA as well.
SUMMARY_METRICS = ("acc", "precision", "recall", "f1", "acc_top5")


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


def write_per_class_csv(path: Path, per_class: dict[str, dict[str, float]]) -> Path:
    rows = [
        [name, f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1']:.4f}", row["support"]]
        for name, row in per_class.items()
    ]
    return atomic_write_csv(path, ["class", "precision", "recall", "f1", "support"], rows)
