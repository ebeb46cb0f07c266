"""Owns the summary of a Hydra multirun: one row per job from its metrics.json, in summary.csv and on screen.

Runs as a Hydra callback when ``train.py -m ...`` ends, and as ``python -m transferlab.sweep <sweep_dir>`` to
regenerate summary.csv for any sweep folder (e.g. one that was interrupted).
"""

import argparse
import csv
import io
import json
import logging
import re
import traceback
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table
from rich.text import Text

from transferlab.files import atomic_write_text

log = logging.getLogger(__name__)

METRICS = ("best_val_acc", "test_acc", "epochs", "fit_seconds")
COLUMNS = ("job", "overrides", "status", *METRICS, "error")


def summarize_sweep(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """One row per job folder (a subfolder holding ``.hydra/overrides.yaml``), in job-number order.

    Each row has the keys of `COLUMNS`: status is "ok" when the job wrote metrics.json, else "failed";
    error is the first line of the job's error.txt ("" when none); metrics missing from metrics.json are None.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(
            f"sweep folder {str(sweep_dir)!r} does not exist: pass the hydra.sweep.dir of a multirun."
        )
    job_dirs = [p for p in sweep_dir.iterdir() if (p / ".hydra" / "overrides.yaml").is_file()]
    return [_summarize_job(p) for p in sorted(job_dirs, key=lambda p: _natural_key(p.name))]


def _natural_key(name: str) -> list[int | str]:
    # Odd positions of the split are the digit runs, so "2" < "10" and "2_lr=0.1" < "10_lr=0.1".
    return [int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", name))]


def _summarize_job(job_dir: Path) -> dict[str, Any]:
    overrides = OmegaConf.to_container(OmegaConf.load(job_dir / ".hydra" / "overrides.yaml"), resolve=False)
    row: dict[str, Any] = {
        "job": job_dir.name,
        "overrides": " ".join(str(o) for o in overrides or []),
        "status": "failed",
        **dict.fromkeys(METRICS),
        "error": "",
    }
    error_file = job_dir / "error.txt"
    if error_file.is_file():
        lines = error_file.read_text(encoding="utf-8", errors="replace").splitlines()
        row["error"] = lines[0].strip() if lines else ""
    metrics_file = job_dir / "metrics.json"
    if metrics_file.is_file():
        # One unreadable file must not cost the summary of the whole sweep.
        try:
            metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
        except ValueError as e:
            row["error"] = row["error"] or f"metrics.json unreadable: {e}"
        else:
            row["status"] = "ok"
            row.update({key: metrics.get(key) for key in METRICS})
    return row


def record_failure(output_dir: str | Path, error: BaseException) -> bool:
    """Writes ``error.txt`` (``Type: message``, then the traceback) into a job's folder.

    Returns True inside a Hydra multirun, where the caller should return a failure value so the other jobs still
    run (Hydra 1.3's basic launcher aborts the whole sweep on an exception); False otherwise (re-raise).
    """
    message = str(error).splitlines()[0] if str(error) else ""
    text = f"{type(error).__name__}: {message}\n" + "".join(traceback.format_exception(error))
    atomic_write_text(Path(output_dir) / "error.txt", text)
    multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    if multirun:
        log.error("Job failed, recorded in %s: %s", Path(output_dir) / "error.txt", text.splitlines()[0])
    return multirun


def write_summary_csv(sweep_dir: str | Path, rows: list[dict[str, Any]]) -> Path:
    """Writes ``<sweep_dir>/summary.csv`` atomically (missing values as empty cells) and returns its path."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = Path(sweep_dir) / "summary.csv"
    atomic_write_text(path, buffer.getvalue())
    return path


def print_summary(rows: list[dict[str, Any]], console: Console | None = None) -> None:
    """Prints the rows as a table, accuracies as percentages and a failed job's error under its overrides."""
    table = Table(title="Sweep summary")
    table.add_column("job")
    table.add_column("status")
    for header in ("best val acc", "test acc", "epochs", "fit time"):
        table.add_column(header, justify="right", no_wrap=True)
    # Fold rather than truncate: in an 80-column log file the overrides are what tells the jobs apart.
    table.add_column("overrides", overflow="fold", ratio=1)
    for row in rows:
        # Text, not str: rich would read "[...]" in overrides or error messages as markup.
        overrides = Text(row["overrides"])
        if row["error"]:
            overrides.append(f"\n{row['error']}", style="red")
        table.add_row(
            Text(row["job"]),
            Text(row["status"], style="green" if row["status"] == "ok" else "red"),
            _percent(row["best_val_acc"]),
            _percent(row["test_acc"]),
            "" if row["epochs"] is None else str(row["epochs"]),
            "" if row["fit_seconds"] is None else f"{row['fit_seconds']:.0f} s",
            overrides,
        )
    (console or Console()).print(table)


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


def _summarize_to(sweep_dir: str | Path) -> Path:
    rows = summarize_sweep(sweep_dir)
    path = write_summary_csv(sweep_dir, rows)
    print_summary(rows)
    log.info("Sweep summary of %d job(s) written to %s", len(rows), path)
    return path


class SummaryCallback(Callback):
    """Writes summary.csv into the sweep folder and prints it when a Hydra multirun ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra passes the config object its launcher used, and caches ${now:...}, so this is the same folder.
        _summarize_to(config.hydra.sweep.dir)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m transferlab.sweep", description="Regenerate summary.csv for a Hydra sweep folder."
    )
    parser.add_argument("sweep_dir", type=Path, help="the hydra.sweep.dir of a multirun")
    args = parser.parse_args(argv)
    try:
        _summarize_to(args.sweep_dir)
    except FileNotFoundError as e:
        parser.error(str(e))


if __name__ == "__main__":
    main()
