"""Owns the summary of a Hydra multirun: one row per job, ranked on validation, in summary.csv and on screen, and one
row per configuration repeated over folds or seeds in summary_groups.csv (rules in ``comparison.py``).

Runs as a Hydra callback when ``train.py -m ...`` ends, and as ``python -m transferlab.reports.sweep_summary
<sweep_dir>`` to regenerate summary.csv for any sweep folder (e.g. one that was interrupted).
"""

import argparse
import logging
import traceback
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table
from rich.text import Text

from transferlab.files import atomic_write_csv, atomic_write_text
from transferlab.reports.comparison import collect_jobs, group_repeats, ranked, summarize_sweep
from transferlab.reports.stats import percent, seconds
from transferlab.runs.layout import ERROR_FILE, GROUPS_FILE, SUMMARY_FILE

log = logging.getLogger(__name__)

COLUMNS = (
    "rank",
    "job",
    "overrides",
    "status",
    "best_val_acc",
    "test_acc",
    "test_acc_low",
    "test_acc_high",
    "test_n",
    "epochs",
    "fit_seconds",
    "group",
    "error",
)
GROUP_COLUMNS = ("rank", "group", "n", "failed", "val_mean", "val_std", "test_mean", "test_std", "fit_mean")


def record_failure(output_dir: str | Path, error: BaseException) -> bool:
    """Writes ``error.txt`` (``Type: message``, then the traceback) into a job's folder.

    Returns True inside a Hydra multirun, where the caller should return a failure value so the other jobs still
    run (Hydra 1.3's basic launcher aborts the whole sweep on an exception); False otherwise (re-raise).
    """
    message = str(error).splitlines()[0] if str(error) else ""
    text = f"{type(error).__name__}: {message}\n" + "".join(traceback.format_exception(error))
    atomic_write_text(Path(output_dir) / ERROR_FILE, text)
    multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    if multirun:
        log.error("Job failed, recorded in %s: %s", Path(output_dir) / ERROR_FILE, text.splitlines()[0])
    return multirun


def summary_rows(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """The jobs of a sweep folder, ranked on validation (``comparison.ranked``), with the `COLUMNS` keys."""
    rows = ranked(collect_jobs(sweep_dir))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank if row["status"] == "ok" else ""
        row["test_acc_low"], row["test_acc_high"] = row["test_acc_ci"] or (None, None)
    return rows


def write_summary_csv(sweep_dir: str | Path, rows: list[dict[str, Any]]) -> Path:
    """Writes ``<sweep_dir>/summary.csv`` atomically (missing values as empty cells) and returns its path; and
    ``summary_groups.csv`` when some configuration was repeated over folds or seeds."""
    groups = group_repeats(rows)
    if groups is not None:
        _write_csv(Path(sweep_dir) / GROUPS_FILE, GROUP_COLUMNS, [{"rank": i, **g} for i, g in enumerate(groups, 1)])
    return _write_csv(Path(sweep_dir) / SUMMARY_FILE, COLUMNS, rows)


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> Path:
    return atomic_write_csv(path, columns, ([row.get(column) for column in columns] for row in rows))


def print_summary(rows: list[dict[str, Any]], console: Console | None = None) -> None:
    """Prints the ranked rows as a table, accuracies as percentages and a failed job's error under its overrides;
    then the repeated configurations, if any."""
    console = console or Console()
    table = Table(title="Sweep summary (ranked by best val acc; test is shown, never used to choose)")
    table.add_column("rank", justify="right")
    table.add_column("job")
    table.add_column("status")
    for header in ("best val acc", "test acc [95% CI]", "epochs", "fit time"):
        table.add_column(header, justify="right", no_wrap=True)
    # Fold rather than truncate: in an 80-column log file the overrides are what tells the jobs apart.
    table.add_column("overrides", overflow="fold", ratio=1)
    for row in rows:
        # Text, not str: rich would read "[...]" in overrides or error messages as markup.
        overrides = Text(row["overrides"])
        if row["error"]:
            overrides.append(f"\n{row['error']}", style="red")
        ci = row.get("test_acc_ci")
        table.add_row(
            str(row.get("rank", "")),
            Text(row["job"]),
            Text(row["status"], style="green" if row["status"] == "ok" else "red"),
            percent(row["best_val_acc"]),
            Text(percent(row["test_acc"]) + (f" [{percent(ci[0])}, {percent(ci[1])}]" if ci else "")),
            "" if row["epochs"] is None else str(row["epochs"]),
            seconds(row["fit_seconds"]),
            overrides,
        )
    console.print(table)
    groups = group_repeats(rows)
    if groups:
        grouped = Table(title="Repeated configurations (folds, seeds): mean ± std, ranked by mean val acc")
        for header in ("rank", "configuration", "n", "failed", "best val acc", "test acc"):
            grouped.add_column(header, justify="left" if header == "configuration" else "right")
        for rank, group in enumerate(groups, start=1):
            grouped.add_row(
                str(rank),
                Text(group["group"]),
                str(group["n"]),
                str(group["failed"]),
                _mean_std(group["val_mean"], group["val_std"]),
                _mean_std(group["test_mean"], group["test_std"]),
            )
        console.print(grouped)


def _mean_std(mean: float | None, std: float | None) -> str:
    if mean is None:
        return ""
    return percent(mean) + ("" if std is None else f" ± {100 * std:.1f}")


def _summarize_to(sweep_dir: str | Path) -> Path:
    rows = summary_rows(sweep_dir)
    path = write_summary_csv(sweep_dir, rows)
    print_summary(rows)
    log.info("Sweep summary of %d job(s) written to %s", len(rows), path)
    return path


class SummaryCallback(Callback):
    """Writes summary.csv into the sweep folder and prints it when a Hydra multirun ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra passes the config object its launcher used, and caches ${now:...}, so this is the same folder.
        _summarize_to(config.hydra.sweep.dir)


class ExitStatusCallback(Callback):
    """Last of the multirun callbacks: a sweep in which some job failed exits non-zero, after every job has run
    and the summary and report are written, naming each failed job and its error (its error.txt)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        failed = [row for row in summarize_sweep(sweep_dir) if row["status"] != "ok"]
        if not failed:
            return
        lines = [f"{len(failed)} job(s) of the sweep in {sweep_dir} failed:"]
        lines += [f"  job {row['job']} ({row['overrides']}): {row['error'] or 'no metrics.json'}" for row in failed]
        lines.append(f"Each job's error.txt has the traceback; {SUMMARY_FILE} lists every job.")
        log.error("\n".join(lines))
        raise SystemExit(1)  # SystemExit, not an exception: Hydra would print a traceback of this callback


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m transferlab.reports.sweep_summary",
        description="Regenerate summary.csv for a Hydra sweep folder.",
    )
    parser.add_argument("sweep_dir", type=Path, help="the hydra.sweep.dir of a multirun")
    args = parser.parse_args(argv)
    try:
        _summarize_to(args.sweep_dir)
    except FileNotFoundError as e:
        parser.error(str(e))


if __name__ == "__main__":
    main()
