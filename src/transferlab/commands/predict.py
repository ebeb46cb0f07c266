"""The prediction command (``predict.py``): classify image files with a checkpoint; writes predictions.csv (path,
the top-k classes with their probabilities, an error for a file that cannot be read) and prints its first rows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table
from rich.text import Text

from transferlab.data.images import list_images
from transferlab.files import atomic_write_csv
from transferlab.inference.image_files import predict_files
from transferlab.inference.trained_model import checkpoint_file, load_classifier
from transferlab.inference.tta import PLAIN, check_tta, tta_views
from transferlab.runs.layout import PREDICTIONS_FILE

log = logging.getLogger(__name__)


def predict(cfg: DictConfig) -> list[dict[str, Any]]:
    """Classify ``cfg.input`` with the checkpoint ``cfg.ckpt_path``; write ``predictions.csv`` and return its rows.

    Each row has the path, the top-``cfg.top_k`` classes with their probabilities (``top1`` is the prediction), and
    an error for a file that could not be read. A short table of the first rows is printed.
    """
    if cfg.top_k < 1:
        raise ValueError(f"top_k={cfg.top_k} must be >= 1")
    tta = check_tta(cfg.tta)
    ckpt_path = checkpoint_file(cfg.ckpt_path)
    model = load_classifier(ckpt_path)
    if not cfg.input:
        raise ValueError("input is required: pass input=<an image file or a folder of images>, or input=[a.jpg,b/]")
    inputs = cfg.input if isinstance(cfg.input, str) else list(cfg.input)
    paths = list_images(inputs)
    predictions = predict_files(
        model,
        paths,
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        device=cfg.device,
        progress=len(paths) > cfg.batch_size,
        views=tta_views(model, ckpt_path) if tta else PLAIN,
    )
    k = min(cfg.top_k, len(model.class_names))
    probs, indices = predictions.probs.topk(k, dim=1)
    by_path = dict(zip(predictions.paths, zip(probs.tolist(), indices.tolist(), strict=True), strict=True))
    rows = []
    for path in paths:
        row: dict[str, Any] = {"path": str(path)}
        if path in by_path:
            for rank, (prob, index) in enumerate(zip(*by_path[path], strict=True), start=1):
                row[f"top{rank}"] = model.class_names[index]
                row[f"top{rank}_probability"] = round(prob, 4)
        else:
            row["error"] = "unreadable image"
        rows.append(row)
    columns = ["path", *(f"top{r}{s}" for r in range(1, k + 1) for s in ("", "_probability")), "error"]
    output = atomic_write_csv(
        Path(cfg.paths.output_dir) / PREDICTIONS_FILE, columns, ([row.get(c) for c in columns] for row in rows)
    )
    print_predictions(rows, k)
    log.info(
        "Classified %d image(s) (%d unreadable) with %s%s; wrote %s",
        len(predictions.paths),
        len(predictions.unreadable),
        model.hparams.backbone,
        f", TTA over {'/'.join(predictions.views)}" if tta else "",
        output,
    )
    return rows


def print_predictions(rows: Sequence[dict[str, Any]], k: int, limit: int = 10) -> None:
    """The first ``limit`` rows as a table (file name, top-k classes with probabilities), then the unreadable files."""
    table = Table(title=f"Predictions ({len(rows)} image(s); all in predictions.csv)")
    table.add_column("file", overflow="fold")
    for rank in range(1, k + 1):
        table.add_column(f"top{rank}")
        table.add_column("p", justify="right")
    for row in rows[:limit]:
        cells = [Path(row["path"]).name]  # Text below, not str: rich would read "[...]" in a file name as markup
        for r in range(1, k + 1):
            cells += [row.get(f"top{r}", ""), f"{row[f'top{r}_probability']:.2f}" if "error" not in row else ""]
        table.add_row(*map(Text, cells))
    console = Console()
    console.print(table)
    unreadable = [row["path"] for row in rows if "error" in row]
    if unreadable:
        console.print(f"{len(unreadable)} unreadable file(s): " + ", ".join(unreadable), style="red", markup=False)
