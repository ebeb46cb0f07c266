"""Owns the figures: learning curves from a run's epoch logs, a confusion matrix, and grids of images, as PNGs.

Plain inputs in (arrays, lists, paths), a PNG out. Figures are built with matplotlib's object API (``Figure``, no
``pyplot``), which renders with Agg and keeps no global state, so plotting works headless and inside a Trainer.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from transferlab.reports.fonts import label_fonts

DPI = 100
SMOOTHING = 0.8  # the EMA factor of Chollet's Keras fine-tuning example (smooth_curve)
RIGHT = "tab:green"
WRONG = "tab:red"


def read_epoch_logs(run_dir: str | Path) -> dict[str, dict[int, float]]:
    """Every logged metric of a run as ``{name: {epoch: value}}``, from ``logs/version_*/metrics.csv``.

    A resumed run writes ``version_1`` and on; versions are read in order, so an epoch logged again after a resume
    keeps its latest value. Step-level columns (``*_step``, ``step``) are left out.
    """
    series: dict[str, dict[int, float]] = {}
    versions = sorted(Path(run_dir).glob("logs/version_*/metrics.csv"), key=_version_number)
    for path in versions:
        pending: list[dict[str, str]] = []
        with path.open(newline="") as file:
            for row in csv.DictReader(file):
                if not row.get("epoch"):
                    # LearningRateMonitor logs at an epoch's start without the epoch: it belongs to the next row's.
                    pending.append(row)
                    continue
                epoch = int(float(row["epoch"]))
                for logged in (*pending, row):
                    for name, value in logged.items():
                        if value and name not in ("epoch", "step") and not name.endswith("_step"):
                            series.setdefault(name, {})[epoch] = float(value)
                pending = []
    return series


def _version_number(path: Path) -> int:
    match = re.search(r"version_(\d+)$", path.parent.name)
    return int(match.group(1)) if match else -1


def smooth_ema(values: Sequence[float], factor: float = SMOOTHING) -> list[float]:
    """Debiased exponential moving average, as TensorBoard smooths its curves.

    The average starts from 0 (``avg = factor × avg + (1 - factor) × value``) and each point is divided by
    ``1 - factor^t``, which removes the pull towards the start: a constant series is smoothed to itself, and a
    short run's smoothed curve ends near its raw one, where the Keras tutorial's form (starting at the first
    value) still lags far behind it.
    """
    smoothed: list[float] = []
    average = 0.0
    for t, value in enumerate(values, start=1):
        average = factor * average + (1 - factor) * value
        smoothed.append(average / (1 - factor**t))
    return smoothed


def plot_learning_curves(
    series: dict[str, dict[int, float]],
    path: str | Path,
    title: str = "",
    *,
    unfreeze_epochs: Sequence[int] = (),
    smoothing: float = SMOOTHING,
) -> Path:
    """Loss and accuracy per epoch (train and val), raw and EMA-smoothed, and the learning rates when logged.

    Args:
        series: ``{metric: {epoch: value}}`` as :func:`read_epoch_logs` returns it.
        unfreeze_epochs: the epochs at which the backbone, or with gradual unfreezing one more stage of it, starts
            training (``Strategy.unfreeze_epochs``), each marked by a dashed line in every panel.
        smoothing: the EMA factor of :func:`smooth_ema`; 0 draws the raw curves only.
    """
    panels = [
        ("loss", [("train/loss_epoch", "train"), ("val/loss", "val")]),
        ("accuracy", [("train/acc", "train"), ("val/acc", "val")]),
    ]
    # Each group's /no_decay twin has the same rate; one line per stage is enough.
    lr_names = sorted(name for name in series if name.startswith("lr-") and not name.endswith("/no_decay"))
    if lr_names:
        panels.append(("learning rate", [(name, name.split("/", 1)[-1]) for name in lr_names]))
    fig = Figure(figsize=(4.5 * len(panels), 3.6), dpi=DPI, layout="constrained")
    for ax, (ylabel, lines) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels, strict=True):
        for name, label in lines:
            points = sorted(series.get(name, {}).items())
            if not points:
                continue
            epochs, values = zip(*points, strict=True)
            if ylabel == "learning rate" or smoothing <= 0:
                ax.plot(epochs, values, marker="o", markersize=3, label=label)
                continue
            # Raw values faint, their EMA solid in the same colour: the trend without hiding the noise.
            (raw,) = ax.plot(epochs, values, marker="o", markersize=3, alpha=0.35, label=f"{label} (raw)")
            ax.plot(epochs, smooth_ema(values, smoothing), color=raw.get_color(), label=f"{label} (EMA {smoothing:g})")
        for i, epoch in enumerate(unfreeze_epochs):
            label = ("backbone unfrozen" if len(unfreeze_epochs) == 1 else "stage unfrozen") if i == 0 else None
            ax.axvline(epoch - 0.5, color="grey", linestyle="--", label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ylabel == "learning rate" and any(v > 0 for name, _ in lines for v in series[name].values()):
            ax.set_yscale("log")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_confusion_matrix(
    matrix: Sequence[Sequence[int]], class_names: Sequence[str], path: str | Path, title: str = "Confusion matrix"
) -> Path:
    """Rows are true classes, columns predicted ones; cells are coloured by the row's fraction, labelled by count."""
    counts = np.asarray(matrix, dtype=np.int64)
    n = len(class_names)
    if counts.shape != (n, n):
        raise ValueError(f"confusion matrix has shape {counts.shape} but there are {n} class names")
    rows = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    side = min(max(4.0, 0.5 * n + 2), 20.0)
    fonts = label_fonts(class_names)
    with fonts.drawing():
        fig = Figure(figsize=(side + 1, side), dpi=DPI, layout="constrained")
        ax = fig.subplots()
        shown = ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
        fig.colorbar(shown, ax=ax, label="fraction of the true class")
        ax.set_xticks(range(n), fonts.labels, rotation=45, ha="right")
        ax.set_yticks(range(n), fonts.labels)
        ax.set_xlabel("predicted" + (f"\n{fonts.note()}" if fonts.undrawn else ""))
        ax.set_ylabel("true")
        ax.set_title(title)
        if n <= 30:  # beyond that the numbers no longer fit their cells
            for i in range(n):
                for j in range(n):
                    colour = "white" if fractions[i, j] > 0.5 else "black"
                    ax.text(j, i, str(counts[i, j]), ha="center", va="center", color=colour, fontsize="small")
        return _save(fig, path)


def plot_image_grid(
    images: Sequence[np.ndarray],
    titles: Sequence[str],
    path: str | Path,
    *,
    colours: Sequence[str] | None = None,
    title: str = "",
) -> Path:
    """HxWx3 uint8 images in a near-square grid, each with its (optionally coloured) title; titles holding class
    names come with the names as ``fonts.label_fonts`` gives them (a fallback font draws what the default lacks)."""
    if not images:
        raise ValueError(f"no images to draw into {path}")
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    # Fixed margins in inches rather than the constrained layout: equal cells need no layout solver, which took
    # most of the drawing time. Above the first row: the figure title, then the two-line cell titles.
    top = (0.4 if title else 0.0) + 0.45
    height = 2.4 * rows + top
    with label_fonts([*titles, title]).drawing():
        fig = Figure(figsize=(2.2 * cols, height), dpi=DPI)
        fig.subplots_adjust(left=0.02, right=0.98, bottom=0.1 / height, top=1 - top / height, hspace=0.3, wspace=0.1)
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for i, ax in enumerate(axes):
            ax.set_axis_off()
            if i < len(images):
                ax.imshow(images[i])
                ax.set_title(titles[i], fontsize="small", color=colours[i] if colours else "black")
        if title:
            fig.suptitle(title)
        return _save(fig, path)


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
