"""Owns what a sweep report says about an Optuna study (``hparams_search=…``): the best trial, and Optuna's plots.

Hydra's Optuna sweeper keeps the study in memory unless ``hydra.sweeper.storage`` is set, and writes only the best
trial to ``optimization_results.yaml``. The trials are rebuilt here from the job folders (each job's swept
overrides and its best validation accuracy, the value ``train.py`` returns to the sweeper), so the report can show
Optuna's own optimisation history and parameter importances for any finished or interrupted study.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

log = logging.getLogger(__name__)

RESULTS_FILE = "optimization_results.yaml"
HISTORY_FILE = "optuna_history.png"
IMPORTANCE_FILE = "optuna_importance.png"


def optuna_section(sweep_dir: Path, rows: list[dict[str, Any]], selected: dict[str, Any] | None) -> list[str]:
    """Report lines for a sweep run by the Optuna sweeper; none for other sweeps."""
    path = sweep_dir / RESULTS_FILE
    if not path.is_file():
        return []
    results = OmegaConf.to_container(OmegaConf.load(path))
    best_value, best_params = results.get("best_value"), results.get("best_params") or {}
    lines = ["", "## Optuna study", ""]
    params = ", ".join(f"`{key}={value}`" for key, value in best_params.items())
    lines.append(f"Optuna's best trial (`{RESULTS_FILE}`): value {best_value} with {params}.")
    if selected is not None and best_value is not None:
        same = selected["best_val_acc"] is not None and abs(selected["best_val_acc"] - float(best_value)) < 1e-9
        lines.append(
            f"The job selected above (job {selected['job']}) is that trial: both maximise the best validation accuracy."
            if same
            else f"The job selected above (job {selected['job']}, best val acc {selected['best_val_acc']}) is not "
            "Optuna's best: the report ranks by another metric (--metric)."
        )
    for name, title in ((HISTORY_FILE, "Optimisation history"), (IMPORTANCE_FILE, "Parameter importances")):
        if _write_plot(sweep_dir, rows, list(best_params), name):
            lines += ["", f"![{title}]({name})"]
    return lines


def rebuild_study(rows: list[dict[str, Any]], names: list[str]) -> Any:
    """An in-memory Optuna study with one trial per job: its swept parameters and its best val accuracy."""
    import optuna
    from optuna.distributions import CategoricalDistribution, LogUniformDistribution, UniformDistribution

    # optuna 2.x (hydra-optuna-sweeper holds optuna below 3): Uniform / LogUniform, FloatDistribution's forerunners.
    def float_distribution(low: float, high: float, log: bool) -> Any:
        return LogUniformDistribution(low, high) if log else UniformDistribution(low, high)

    values: dict[str, list[Any]] = {name: [] for name in names}
    trials = []
    for row in rows:
        overrides = dict(o.lstrip("+").split("=", 1) for o in row["overrides"].split() if "=" in o)
        params = {name: _parse(overrides[name]) for name in names if name in overrides}
        for name, value in params.items():
            values[name].append(value)
        trials.append((params, row["best_val_acc"] if row["status"] == "ok" else None))
    distributions = {}
    for name, seen in values.items():
        if seen and all(isinstance(v, float) for v in seen):
            low, high = min(seen), max(seen)
            distributions[name] = float_distribution(low, high, log=low > 0 and high / low >= 100)
        elif seen:
            distributions[name] = CategoricalDistribution(sorted({str(v) for v in seen}))
    study = optuna.create_study(direction="maximize")
    for params, value in trials:
        params = {k: str(v) if isinstance(distributions[k], CategoricalDistribution) else v for k, v in params.items()}
        used = {k: distributions[k] for k in params}
        state = optuna.trial.TrialState.COMPLETE if value is not None else optuna.trial.TrialState.FAIL
        study.add_trial(optuna.trial.create_trial(params=params, distributions=used, value=value, state=state))
    return study


def _parse(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def _write_plot(sweep_dir: Path, rows: list[dict[str, Any]], names: list[str], name: str) -> bool:
    from optuna.visualization import matplotlib as optuna_plots

    study = rebuild_study(rows, names)
    plot = optuna_plots.plot_optimization_history if name == HISTORY_FILE else optuna_plots.plot_param_importances
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots as experimental
            axes = plot(study)
    except (ValueError, RuntimeError) as error:  # e.g. importances need two finished trials that differ
        log.info("Optuna plot %s skipped: %s", name, error)
        return False
    figure = axes.figure
    figure.set_size_inches(8, 4.5)
    figure.tight_layout()
    figure.savefig(sweep_dir / name, dpi=100)
    import matplotlib.pyplot as plt

    plt.close(figure)
    return True
