"""Owns the comparison of a sweep's jobs: what each job is, which one is selected, repeats, and paired tests.

The rules a careful reviewer asks for, stated once here and used by the report and the sweep summary:

- **Select on validation, never on test.** Jobs are ranked by their best value of a validation metric
  (``val/acc`` by default: the best-checkpoint score); ties go to the lower job number. Test figures are shown
  for every job but never used to choose: choosing on test tunes the method to the test images.
- **Repeats are grouped.** Jobs whose overrides differ only in `REPEAT_KEYS` (folds, seeds) are one
  configuration measured several times: they are summarised as mean ± standard deviation, ranked by mean
  validation, and a failed repeat is counted, never averaged in silently.
- **Paired test.** Two jobs tested on the identical images are compared by McNemar's exact test on their
  ``predictions.csv`` (see ``stats.py``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from transferlab.files import read_csv_rows
from transferlab.reports.stats import McNemar, few_images_warning, mcnemar
from transferlab.runs.layout import (
    ERROR_FILE,
    OVERRIDES_FILE,
    PREDICTIONS_FILE,
    read_config,
    read_confusion_matrix,
    read_metrics,
)

METRICS = ("best_val_acc", "test_acc", "epochs", "fit_seconds")
REPEAT_KEYS = ("data.fold", "seed", "data.split_seed")
DEFAULT_METRIC = "val/acc"


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
    job_dirs = [p for p in sweep_dir.iterdir() if (p / OVERRIDES_FILE).is_file()]
    return [_summarize_job(p) for p in sorted(job_dirs, key=lambda p: _natural_key(p.name))]


def _natural_key(name: str) -> list[int | str]:
    # Odd positions of the split are the digit runs, so "2" < "10" and "2_lr=0.1" < "10_lr=0.1".
    return [int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", name))]


def _summarize_job(job_dir: Path) -> dict[str, Any]:
    overrides = OmegaConf.to_container(OmegaConf.load(job_dir / OVERRIDES_FILE), resolve=False)
    row: dict[str, Any] = {
        "job": job_dir.name,
        "overrides": " ".join(str(o) for o in overrides or []),
        "status": "failed",
        **dict.fromkeys(METRICS),
        "error": "",
    }
    error_file = job_dir / ERROR_FILE
    if error_file.is_file():
        lines = error_file.read_text(encoding="utf-8", errors="replace").splitlines()
        row["error"] = lines[0].strip() if lines else ""
    # One unreadable file must not cost the summary of the whole sweep.
    try:
        metrics = read_metrics(job_dir)
    except ValueError as e:
        row["error"] = row["error"] or str(e)
    else:
        if metrics is not None:
            row["status"] = "ok"
            row.update({key: metrics.get(key) for key in METRICS})
    return row


def check_metric(metric: str) -> None:
    if not metric.startswith("val/"):
        raise ValueError(
            f"report.metric={metric!r} is not a validation metric: jobs are selected on validation (val/acc, "
            "val/f1, val/loss, …), never on test, which would tune the choice to the test images."
        )


def collect_jobs(sweep_dir: str | Path, metric: str = DEFAULT_METRIC) -> list[dict[str, Any]]:
    """The summary rows of :func:`summarize_sweep`, each with more read from its job folder.

    Added keys: ``label`` (the overrides that differ between jobs), ``group`` (the label without `REPEAT_KEYS`),
    ``strategy``, ``backbone``, ``test_f1``, ``test_acc_ci``, ``test_f1_ci``, ``test_n``, ``test_class_counts``,
    ``trainable_params``, ``per_class_acc`` (test, by class), ``val_acc`` (``{epoch: value}``), ``epochs_to_best``
    (epochs trained until the best val accuracy, counting from 1), ``seconds_per_epoch`` and ``selection`` (the
    job's best value of `metric`, by which it is ranked).
    """
    from transferlab.reports.charts import (
        read_epoch_logs,  # here: matplotlib is slow to import, and most launches need none
    )

    check_metric(metric)
    sweep_dir = Path(sweep_dir)
    rows = summarize_sweep(sweep_dir)
    shared = shared_overrides([row["overrides"].split() for row in rows])
    for row in rows:
        job_dir = sweep_dir / row["job"]
        varying = [o for o in row["overrides"].split() if o not in shared]
        row["label"] = " ".join(varying) or f"job {row['job']}"
        row["group"] = " ".join(o for o in varying if not _is_repeat_key(o)) or "all jobs"
        config = _load_config(job_dir)
        metrics = _load_metrics(job_dir) if row["status"] == "ok" else {}
        # A linear probe (probe.py) has no strategy group; its metrics.json says what it is.
        strategy = OmegaConf.select(config, "strategy.name", default=None, throw_on_missing=False)
        row["strategy"] = metrics.get("strategy") or strategy
        row["backbone"] = OmegaConf.select(config, "model.backbone", default=None, throw_on_missing=False)
        for key in ("test_f1", "test_acc_ci", "test_f1_ci", "test_n", "trainable_params"):
            row[key] = metrics.get(key)
        row["per_class_acc"] = metrics.get("test_per_class_acc") or {}
        matrix, names = read_confusion_matrix(job_dir, metrics), metrics.get("class_names")
        row["test_class_counts"] = dict(zip(names, map(sum, matrix), strict=True)) if matrix and names else {}
        series = read_epoch_logs(job_dir)
        row["val_acc"] = series.get("val/acc", {})
        # The first epoch reaching the best value: the one ModelCheckpoint kept (it saves on strict improvement).
        row["epochs_to_best"] = (
            1 + max(row["val_acc"], key=lambda e: (row["val_acc"][e], -e)) if row["val_acc"] else None
        )
        timed = row["fit_seconds"] is not None and row["epochs"]
        row["seconds_per_epoch"] = row["fit_seconds"] / row["epochs"] if timed else None
        row["selection"] = _selection_value(row, series.get(metric, {}), metric)
    return rows


def _is_repeat_key(override: str) -> bool:
    return override.lstrip("+~").split("=", 1)[0] in REPEAT_KEYS


def _selection_value(row: dict[str, Any], series: dict[int, float], metric: str) -> float | None:
    if row["status"] != "ok":
        return None
    if metric == DEFAULT_METRIC and row["best_val_acc"] is not None:
        return row["best_val_acc"]  # the best checkpoint's own score (EMA weights included)
    if not series:
        return None
    return min(series.values()) if metric.endswith("loss") else max(series.values())


def ranked(rows: list[dict[str, Any]], metric: str = DEFAULT_METRIC) -> list[dict[str, Any]]:
    """Finished jobs by their selection value, best first, ties by job order; failed jobs after them."""
    sign = 1 if metric.endswith("loss") else -1
    order = {id(row): i for i, row in enumerate(rows)}
    return sorted(
        rows,
        key=lambda r: (r["selection"] is None, sign * (r["selection"] or 0.0), order[id(r)]),
    )


def shared_overrides(overrides: list[list[str]]) -> set[str]:
    if len(overrides) < 2:
        return set()
    counts = Counter(o for job in overrides for o in set(job))
    return {o for o, count in counts.items() if count == len(overrides)}


def _load_config(job_dir: Path) -> DictConfig:
    config = read_config(job_dir)
    return OmegaConf.create() if config is None else config


def _load_metrics(job_dir: Path) -> dict[str, Any]:
    try:
        return read_metrics(job_dir) or {}
    except ValueError:  # summarize_sweep has reported it in the job's row
        return {}


def group_repeats(rows: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """Per group of repeats (see the module docstring): n, failed, mean ± std of best val and test accuracy, mean
    fit time; ranked by mean validation. None when no configuration was repeated."""
    import pandas as pd  # here: pandas costs a second of start-up that only sweeps with repeats need

    frame = pd.DataFrame(
        {
            "group": [r["group"] for r in rows],
            "ok": [r["status"] == "ok" for r in rows],
            "val": [r["selection"] for r in rows],
            "test": [r["test_acc"] for r in rows],
            "fit": [r["fit_seconds"] for r in rows],
        }
    )
    if frame["group"].value_counts().max() < 2:
        return None
    done = frame[frame["ok"]].astype({"val": float, "test": float, "fit": float})
    stats = done.groupby("group", sort=False).agg(
        n=("val", "size"),
        val_mean=("val", "mean"),
        val_std=("val", "std"),
        test_mean=("test", "mean"),
        test_std=("test", "std"),
        fit_mean=("fit", "mean"),
    )
    failed = (~frame["ok"]).groupby(frame["group"], sort=False).sum().rename("failed")
    table = stats.join(failed, how="outer").fillna({"n": 0, "failed": 0})
    table = table.astype({"n": int, "failed": int})
    table = table.sort_values("val_mean", ascending=False, na_position="last", kind="stable")
    return [
        {key: (None if isinstance(value, float) and math.isnan(value) else value) for key, value in record.items()}
        for record in table.reset_index().to_dict("records")
    ]


def read_correctness(job_dir: Path) -> dict[str, bool] | None:
    """Per test image of a job (its ``predictions.csv``), whether the job got it right; None without the file."""
    path = job_dir / PREDICTIONS_FILE
    if not path.is_file():
        return None
    return {row["path"]: row["correct"] == "1" for row in read_csv_rows(path)}


def paired_tests(sweep_dir: Path, selected: dict[str, Any], others: list[dict[str, Any]]) -> list[tuple[dict, Any]]:
    """McNemar's test of the selected job against each other finished job tested on the identical images.

    Returns (job row, :class:`~transferlab.reports.stats.McNemar`, or a string saying why there is no test) pairs.
    """
    base = read_correctness(sweep_dir / selected["job"])
    results: list[tuple[dict, McNemar | str]] = []
    for row in others:
        other = read_correctness(sweep_dir / row["job"])
        if base is None or other is None:
            results.append((row, f"no {PREDICTIONS_FILE} to compare"))
        elif base.keys() != other.keys():
            results.append((row, "tested on other images: no paired test"))
        else:
            paths = sorted(base)
            results.append((row, mcnemar([base[p] for p in paths], [other[p] for p in paths])))
    return results


def small_test_warning(rows: list[dict[str, Any]]) -> str | None:
    """The few-images warning of the smallest test split among the finished jobs."""
    counted = [r["test_class_counts"] for r in rows if r["test_class_counts"]]
    if not counted:
        return None
    return few_images_warning(min(counted, key=lambda counts: min(counts.values())))
