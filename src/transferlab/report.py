"""Owns the strategy report of a sweep: ``report.md`` and its figure ``report.png``, comparing the jobs of a multirun.

Written when ``train.py -m ...`` ends (a Hydra callback, after summary.csv), and regenerated for any sweep folder by
``python -m transferlab.report <sweep_dir>``. Everything is read back from the job folders (metrics.json,
.hydra/, logs/), so a report can be rebuilt at any time, also for an interrupted sweep.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from omegaconf import DictConfig, OmegaConf

from transferlab.files import atomic_write_text
from transferlab.plots import DPI, read_epoch_logs
from transferlab.sweep import summarize_sweep

log = logging.getLogger(__name__)

REPORT_FILE = "report.md"
FIGURE_FILE = "report.png"
MAX_CLASSES_IN_TABLE = 30


def collect_jobs(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """The summary rows of :func:`~transferlab.sweep.summarize_sweep`, each with more read from its job folder.

    Added keys: ``label`` (the overrides that differ between jobs), ``strategy``, ``backbone``, ``test_f1``,
    ``trainable_params``, ``per_class_acc`` (test, by class), ``val_acc`` (``{epoch: value}``), ``epochs_to_best``
    (epochs trained until the best val accuracy, counting from 1) and ``seconds_per_epoch`` (fit time / epochs).
    """
    sweep_dir = Path(sweep_dir)
    rows = summarize_sweep(sweep_dir)
    shared = _shared_overrides([row["overrides"].split() for row in rows])
    for row in rows:
        job_dir = sweep_dir / row["job"]
        varying = [o for o in row["overrides"].split() if o not in shared]
        row["label"] = " ".join(varying) or f"job {row['job']}"
        config = _load_config(job_dir)
        metrics = _load_metrics(job_dir) if row["status"] == "ok" else {}
        # A linear probe (probe.py) has no strategy group; its metrics.json says what it is.
        strategy = OmegaConf.select(config, "strategy.name", default=None, throw_on_missing=False)
        row["strategy"] = metrics.get("strategy") or strategy
        row["backbone"] = OmegaConf.select(config, "model.backbone", default=None, throw_on_missing=False)
        row["test_f1"] = metrics.get("test_f1")
        row["trainable_params"] = metrics.get("trainable_params")
        row["per_class_acc"] = metrics.get("test_per_class_acc") or {}
        row["val_acc"] = read_epoch_logs(job_dir).get("val/acc", {})
        # The first epoch reaching the best value: the one ModelCheckpoint kept (it saves on strict improvement).
        row["epochs_to_best"] = (
            1 + max(row["val_acc"], key=lambda e: (row["val_acc"][e], -e)) if row["val_acc"] else None
        )
        timed = row["fit_seconds"] is not None and row["epochs"]
        row["seconds_per_epoch"] = row["fit_seconds"] / row["epochs"] if timed else None
    return rows


def _shared_overrides(overrides: list[list[str]]) -> set[str]:
    if len(overrides) < 2:
        return set()
    counts = Counter(o for job in overrides for o in set(job))
    return {o for o, count in counts.items() if count == len(overrides)}


def _load_config(job_dir: Path) -> DictConfig:
    path = job_dir / ".hydra" / "config.yaml"
    return OmegaConf.load(path) if path.is_file() else OmegaConf.create()


def _load_metrics(job_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((job_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _ranked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Finished jobs by test accuracy (then best val accuracy), best first; failed jobs after them."""
    return sorted(rows, key=lambda r: (r["status"] != "ok", -(r["test_acc"] or 0.0), -(r["best_val_acc"] or 0.0)))


def render_markdown(sweep_dir: Path, rows: list[dict[str, Any]], figure: Path | None) -> str:
    ok = [r for r in rows if r["status"] == "ok"]
    lines = [f"# Strategy report: {sweep_dir.name}", ""]
    lines.append(f"{len(rows)} job(s) in `{sweep_dir}`: {len(ok)} finished, {len(rows) - len(ok)} failed.")
    shared = _shared_overrides([r["overrides"].split() for r in rows])
    if shared:
        lines.append(f"Common to all jobs: `{' '.join(sorted(shared))}`.")
    ranked = _ranked(rows)
    if ok:
        best = ranked[0]
        lines.append("")
        lines.append(
            f"**Best: `{best['label']}`** (job {best['job']}): test accuracy {_pct(best['test_acc'])}, "
            f"best val accuracy {_pct(best['best_val_acc'])}."
        )
    lines += [
        "",
        "| rank | job | overrides | strategy | backbone | best val acc | test acc | test F1 | epochs to best "
        "| epochs | s/epoch | fit time | trainable params |",
        "|---:|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for rank, row in enumerate(ranked, start=1):
        cells = [
            str(rank) if row["status"] == "ok" else "failed",
            row["job"],
            f"`{row['label']}`",
            row["strategy"] or "",
            row["backbone"] or "",
            _pct(row["best_val_acc"]),
            _pct(row["test_acc"]),
            _pct(row["test_f1"]),
            "" if row["epochs_to_best"] is None else str(row["epochs_to_best"]),
            "" if row["epochs"] is None else str(row["epochs"]),
            "" if row["seconds_per_epoch"] is None else f"{row['seconds_per_epoch']:.1f} s",
            "" if row["fit_seconds"] is None else f"{row['fit_seconds']:.0f} s",
            "" if row["trainable_params"] is None else f"{row['trainable_params']:,}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if figure is not None:
        lines += ["", f"![Test accuracy, validation curves and cost of each job]({figure.name})"]
    lines += _per_class_table(ranked)
    failed = [r for r in ranked if r["status"] != "ok"]
    if failed:
        lines += ["", "## Failed jobs", ""]
        lines += [f"- job {r['job']} `{r['label']}`: {r['error'] or 'no metrics.json'}" for r in failed]
    lines += [
        "",
        "Accuracies are top-1 on the sweep's shared split; F1 is macro over classes. "
        f"Regenerate with `python -m transferlab.report {sweep_dir}`.",
        "",
    ]
    return "\n".join(lines)


def _per_class_table(ranked: list[dict[str, Any]]) -> list[str]:
    jobs = [r for r in ranked if r["per_class_acc"]]
    classes = list(jobs[0]["per_class_acc"]) if jobs else []
    if not jobs or len(classes) > MAX_CLASSES_IN_TABLE:
        return []
    lines = ["", "## Test accuracy per class", ""]
    lines.append("| class | " + " | ".join(f"job {r['job']}" for r in jobs) + " |")
    lines.append("|---|" + "---:|" * len(jobs))
    for name in classes:
        lines.append(f"| {name} | " + " | ".join(_pct(r["per_class_acc"].get(name)) for r in jobs) + " |")
    return lines


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


def plot_report(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Test and best val accuracy per job, val accuracy per epoch, and test accuracy against fit time."""
    ok = _ranked([r for r in rows if r["status"] == "ok"])
    if not ok:
        return None
    fig = Figure(figsize=(16, max(3.6, 0.45 * len(ok) + 1.5)), dpi=DPI, layout="constrained")
    bars, curves, cost = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.3, 1, 1]})
    positions = range(len(ok))[::-1]  # best at the top
    bars.barh([p + 0.2 for p in positions], [r["test_acc"] or 0 for r in ok], height=0.4, label="test")
    bars.barh([p - 0.2 for p in positions], [r["best_val_acc"] or 0 for r in ok], height=0.4, label="best val")
    bars.set_yticks(list(positions), [_short(r["label"]) for r in ok], fontsize="small")
    bars.set_xlim(0, 1)
    bars.set_xlabel("accuracy")
    bars.set_title("Accuracy per job")
    bars.legend(fontsize="small", loc="lower right")
    for row in ok:
        points = sorted(row["val_acc"].items())
        if points:
            epochs, values = zip(*points, strict=True)
            curves.plot(epochs, values, marker="o", markersize=3, label=_short(row["label"]))
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


def _short(label: str, width: int = 40) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def write_report(sweep_dir: str | Path) -> Path:
    """Writes ``<sweep_dir>/report.md`` and ``report.png`` and returns the Markdown file's path."""
    sweep_dir = Path(sweep_dir)
    rows = collect_jobs(sweep_dir)
    if not rows:
        raise FileNotFoundError(
            f"{sweep_dir} holds no job folders (subfolders with .hydra/overrides.yaml): pass the hydra.sweep.dir "
            "of a multirun"
        )
    figure = plot_report(rows, sweep_dir / FIGURE_FILE)
    return atomic_write_text(sweep_dir / REPORT_FILE, render_markdown(sweep_dir, rows, figure))


class ReportCallback(Callback):
    """Writes report.md and report.png into the sweep folder when a Hydra multirun ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        path = write_report(config.hydra.sweep.dir)
        log.info("Strategy report written to %s", path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m transferlab.report",
        description="Write report.md and report.png comparing the jobs of a Hydra sweep folder.",
    )
    parser.add_argument("sweep_dir", type=Path, help="the hydra.sweep.dir of a multirun")
    args = parser.parse_args(argv)
    try:
        path = write_report(args.sweep_dir)
    except FileNotFoundError as e:
        parser.error(str(e))
    figure = path.with_name(FIGURE_FILE)
    print(f"Wrote {path}" + (f" and {figure}" if figure.is_file() else ""))


if __name__ == "__main__":
    main()
