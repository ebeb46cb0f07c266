"""Owns the strategy report of a sweep: ``report.md`` and its figure ``report.png``, comparing the jobs of a multirun.

Written when ``train.py -m ...`` ends (a Hydra callback, after summary.csv), and regenerated for any sweep folder by
``python -m transferlab.reports.sweep_report <sweep_dir>``. Everything is read back from the job folders (metrics.json,
.hydra/, logs/), so a report can be rebuilt at any time, also for an interrupted sweep.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from transferlab.files import atomic_write_text
from transferlab.reports.comparison import (
    DEFAULT_METRIC,
    check_metric,
    collect_jobs,
    group_repeats,
    paired_tests,
    ranked,
    shared_overrides,
    small_test_warning,
)
from transferlab.reports.optuna_study import optuna_section
from transferlab.reports.stats import format_interval, percent, seconds
from transferlab.runs.layout import REPORT_FIGURE_FILE, REPORT_FILE

log = logging.getLogger(__name__)

MAX_CLASSES_IN_TABLE = 30


def render_markdown(
    sweep_dir: Path, rows: list[dict[str, Any]], figure: Path | None, metric: str = DEFAULT_METRIC
) -> str:
    ok = [r for r in rows if r["status"] == "ok"]
    order = ranked(rows, metric)
    lines = _summary_lines(sweep_dir, rows, ok, order, metric)
    lines += _jobs_table(order, metric)
    if figure is not None:
        lines += ["", f"![Accuracy, validation curves and cost of each job]({figure.name})"]
    lines += _groups_table(rows)
    if len(ok) > 1:
        lines += _paired_lines(sweep_dir, order[0], [r for r in order[1:] if r["status"] == "ok"])
    lines += optuna_section(sweep_dir, rows, order[0] if ok else None)
    lines += _per_class_table(order)
    lines += _failed_lines(order)
    lines += [
        "",
        "Accuracies are top-1 on each job's test split; F1 is macro over classes. Intervals are 95 %: Wilson for "
        "accuracy, a seeded bootstrap over the test images for F1. "
        f"Regenerate with `python -m transferlab.reports.sweep_report {sweep_dir}`.",
        "",
    ]
    return "\n".join(lines)


def _summary_lines(
    sweep_dir: Path, rows: list[dict[str, Any]], ok: list[dict[str, Any]], order: list[dict[str, Any]], metric: str
) -> list[str]:
    """The title, the job counts, the overrides common to all jobs, how jobs are selected, the small-test warning
    and the selected job."""
    lines = [f"# Strategy report: {sweep_dir.name}", ""]
    lines.append(f"{len(rows)} job(s) in `{sweep_dir}`: {len(ok)} finished, {len(rows) - len(ok)} failed.")
    shared = shared_overrides([r["overrides"].split() for r in rows])
    if shared:
        lines.append(f"Common to all jobs: `{' '.join(sorted(shared))}`.")
    lines.append(
        f"Jobs are ranked and selected by their best validation {metric}; test figures are shown for every job "
        "but never used to choose."
    )
    warning = small_test_warning(ok)
    if warning:
        lines += ["", f"> **Warning:** {warning}"]
    if ok:
        best = order[0]
        lines += [
            "",
            f"**Selected on validation: `{best['label']}`** (job {best['job']}): best validation {metric} "
            f"{_value(best['selection'])}; test accuracy {_test_acc(best)}.",
        ]
    return lines


def _jobs_table(order: list[dict[str, Any]], metric: str) -> list[str]:
    """One row per job in selection order (failed jobs last): its rank, settings, scores and cost."""
    lines = [
        "",
        f"| rank | job | overrides | strategy | backbone | best {metric} | test acc [95% CI] (n) | test F1 [95% CI] "
        "| epochs to best | epochs | s/epoch | fit time | trainable params |",
        "|---:|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for rank, row in enumerate(order, start=1):
        cells = [
            str(rank) if row["status"] == "ok" else "failed",
            row["job"],
            f"`{row['label']}`",
            row["strategy"] or "",
            row["backbone"] or "",
            _value(row["selection"]),
            _test_acc(row),
            "" if row["test_f1"] is None else format_interval(row["test_f1"], row["test_f1_ci"]),
            "" if row["epochs_to_best"] is None else str(row["epochs_to_best"]),
            "" if row["epochs"] is None else str(row["epochs"]),
            "" if row["seconds_per_epoch"] is None else f"{row['seconds_per_epoch']:.1f} s",
            seconds(row["fit_seconds"]),
            "" if row["trainable_params"] is None else f"{row['trainable_params']:,}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _failed_lines(order: list[dict[str, Any]]) -> list[str]:
    failed = [r for r in order if r["status"] != "ok"]
    if not failed:
        return []
    lines = ["", "## Failed jobs", ""]
    lines += [f"- job {r['job']} `{r['label']}`: {r['error'] or 'no metrics.json'}" for r in failed]
    return lines


def _test_acc(row: dict[str, Any]) -> str:
    if row["test_acc"] is None:
        return ""
    return format_interval(row["test_acc"], row["test_acc_ci"], row["test_n"])


def _value(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _groups_table(rows: list[dict[str, Any]]) -> list[str]:
    groups = group_repeats(rows)
    if groups is None:
        return []
    lines = [
        "",
        "## Repeated runs (folds and seeds)",
        "",
        "Jobs that differ only in `data.fold`, `seed` or `data.split_seed` are one configuration measured several "
        "times; ranked by mean validation.",
        "",
        "| rank | configuration | n | failed | best val (mean ± std) | test acc (mean ± std) | mean fit time |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for rank, group in enumerate(groups, start=1):
        lines.append(
            f"| {rank} | `{group['group']}` | {group['n']} | {group['failed']} | "
            f"{_mean_std(group['val_mean'], group['val_std'])} | {_mean_std(group['test_mean'], group['test_std'])} "
            f"| {seconds(group['fit_mean'])} |"
        )
    return lines


def _mean_std(mean: float | None, std: float | None) -> str:
    if mean is None:
        return ""
    return f"{mean:.3f} ± {std:.3f}" if std is not None else f"{mean:.3f}"


def _paired_lines(sweep_dir: Path, selected: dict[str, Any], others: list[dict[str, Any]]) -> list[str]:
    lines = ["", f"## Is the selected job really better? (paired tests against job {selected['job']})", ""]
    for row, result in paired_tests(sweep_dir, selected, others):
        text = result if isinstance(result, str) else result.sentence(f"job {selected['job']}", f"job {row['job']}")
        lines.append(f"- vs job {row['job']} `{row['label']}`: {text}.")
    return lines


def _per_class_table(ranked: list[dict[str, Any]]) -> list[str]:
    jobs = [r for r in ranked if r["per_class_acc"]]
    classes = list(jobs[0]["per_class_acc"]) if jobs else []
    if not jobs or len(classes) > MAX_CLASSES_IN_TABLE:
        return []
    lines = ["", "## Test accuracy per class", ""]
    lines.append("| class | " + " | ".join(f"job {r['job']}" for r in jobs) + " |")
    lines.append("|---|" + "---:|" * len(jobs))
    for name in classes:
        lines.append(f"| {name} | " + " | ".join(percent(r["per_class_acc"].get(name)) for r in jobs) + " |")
    return lines


def plot_report(rows: list[dict[str, Any]], path: Path, metric: str = DEFAULT_METRIC) -> Path | None:
    """Best val and test accuracy per job (in selection order), val accuracy per epoch, test accuracy against fit
    time."""
    from matplotlib.figure import Figure  # here: the callback is built at every launch, matplotlib is slow to import
    from matplotlib.ticker import MaxNLocator

    from transferlab.reports.charts import DPI

    ok = ranked([r for r in rows if r["status"] == "ok"], metric)
    if not ok:
        return None
    labels = _short_labels(ok)
    fig = Figure(figsize=(16, max(3.6, 0.45 * len(ok) + 1.5)), dpi=DPI, layout="constrained")
    bars, curves, cost = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.3, 1, 1]})
    positions = range(len(ok))[::-1]  # best at the top
    bars.barh([p + 0.2 for p in positions], [r["test_acc"] or 0 for r in ok], height=0.4, label="test")
    bars.barh([p - 0.2 for p in positions], [r["best_val_acc"] or 0 for r in ok], height=0.4, label="best val")
    bars.set_yticks(list(positions), [labels[r["job"]] for r in ok], fontsize="small")
    bars.set_xlim(0, 1)
    bars.set_xlabel("accuracy")
    bars.set_title(f"Accuracy per job (ordered by best {metric})")
    bars.legend(fontsize="small", loc="lower right")
    for row in ok:
        points = sorted(row["val_acc"].items())
        if points:
            epochs, values = zip(*points, strict=True)
            curves.plot(epochs, values, marker="o", markersize=3, label=labels[row["job"]])
    curves.set_xlabel("epoch")
    curves.set_ylabel("val accuracy")
    curves.set_title("Validation accuracy per epoch")
    curves.xaxis.set_major_locator(MaxNLocator(integer=True))
    curves.grid(alpha=0.3)
    if curves.get_legend_handles_labels()[0] and len(ok) <= 12:
        curves.legend(fontsize="x-small")
    timed = [r for r in ok if r["fit_seconds"] is not None and r["test_acc"] is not None]
    cost.scatter([r["fit_seconds"] for r in timed], [r["test_acc"] for r in timed])
    for row in timed:
        cost.annotate(f"job {row['job']}", (row["fit_seconds"], row["test_acc"]), fontsize="x-small")
    cost.set_xlabel("fit time (s)")
    cost.set_ylabel("test accuracy")
    cost.set_title("Test accuracy against training time")
    cost.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _short_labels(rows: list[dict[str, Any]], width: int = 40) -> dict[str, str]:
    """Each job's label for the figure, shortened to `width` without ever making two jobs' labels identical."""
    short = {r["job"]: r["label"] if len(r["label"]) <= width else r["label"][: width - 1] + "…" for r in rows}
    if len(set(short.values())) < len(short) or any(len(r["label"]) > width for r in rows):
        # Shortened labels can collide (overrides that differ only at their end): the job number tells them apart.
        return {job: label if label.startswith("job ") else f"job {job}: {label}" for job, label in short.items()}
    return short


def write_report(sweep_dir: str | Path, metric: str = DEFAULT_METRIC) -> Path:
    """Writes ``<sweep_dir>/report.md`` and ``report.png`` and returns the Markdown file's path.

    `metric`: the validation metric jobs are ranked and selected by (``val/acc``, ``val/f1``, ``val/loss``, …).
    """
    sweep_dir = Path(sweep_dir)
    rows = collect_jobs(sweep_dir, metric)
    if not rows:
        raise FileNotFoundError(
            f"{sweep_dir} holds no job folders (subfolders with .hydra/overrides.yaml): pass the hydra.sweep.dir "
            "of a multirun"
        )
    figure = plot_report(rows, sweep_dir / REPORT_FIGURE_FILE, metric)
    return atomic_write_text(sweep_dir / REPORT_FILE, render_markdown(sweep_dir, rows, figure, metric))


class ReportCallback(Callback):
    """Writes report.md and report.png into the sweep folder when a Hydra multirun ends.

    ``metric`` (``hydra.callbacks.report.metric``): the validation metric the jobs are ranked by.
    """

    def __init__(self, metric: str = DEFAULT_METRIC) -> None:
        check_metric(metric)
        self.metric = metric

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        path = write_report(config.hydra.sweep.dir, self.metric)
        log.info("Strategy report written to %s", path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m transferlab.reports.sweep_report",
        description="Write report.md and report.png comparing the jobs of a Hydra sweep folder.",
    )
    parser.add_argument("sweep_dir", type=Path, help="the hydra.sweep.dir of a multirun")
    parser.add_argument(
        "--metric",
        default=DEFAULT_METRIC,
        help="the validation metric to rank and select jobs by (default: %(default)s; e.g. val/f1, val/loss)",
    )
    args = parser.parse_args(argv)
    try:
        path = write_report(args.sweep_dir, args.metric)
    except (FileNotFoundError, ValueError) as e:
        parser.error(str(e))
    figure = path.with_name(REPORT_FIGURE_FILE)
    print(f"Wrote {path}" + (f" and {figure}" if figure.is_file() else ""))


if __name__ == "__main__":
    main()
