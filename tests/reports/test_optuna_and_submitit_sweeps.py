"""Sweeps leaving the basic launcher: an Optuna study (hparams_search=finetune_optuna) and the submitit launcher."""

from __future__ import annotations

import csv

import pytest
from helpers import SHRINK, assert_succeeded, train
from omegaconf import OmegaConf

from transferlab.runs.layout import SUMMARY_FILE

pytestmark = pytest.mark.slow


def read_summary(sweep_dir) -> list[dict[str, str]]:
    with (sweep_dir / SUMMARY_FILE).open(newline="") as f:
        return list(csv.DictReader(f))


def test_optuna_study_records_a_failed_trial_and_goes_on(tmp_path, env):
    sweep_dir = tmp_path / "sweep"
    result = train(
        "hparams_search=finetune_optuna",
        *SHRINK,
        "hydra.sweeper.n_trials=3",
        # layer9 is refused by the config checks: the trials that draw it fail, the others train.
        "strategy.unfreeze_from=choice(layer4,layer9)",  # replaces the config's choice for this study
        "plots.enabled=false",
        f"hydra.sweep.dir={sweep_dir}",
        env=env,
        cwd=tmp_path,
        timeout=90,
    )
    # Every trial ran, then the sweep exits non-zero naming the failed ones.
    assert result.returncode == 1, result.stderr[-3000:]
    assert "job(s) of the sweep in" in result.stdout + result.stderr

    rows = read_summary(sweep_dir)
    assert len(rows) == 3, rows
    failed = [row for row in rows if row["status"] == "failed"]
    ok = [row for row in rows if row["status"] == "ok"]
    assert failed and ok, rows
    assert all("strategy.unfreeze_from=layer9" in row["overrides"] and "layer9" in row["error"] for row in failed)
    for row in rows:  # every trial drew every searched key
        for key in ("optimizer.lr=", "strategy.backbone_lr_scale=", "optimizer.weight_decay=", "loss.label_smoothing="):
            assert key in row["overrides"], row
    best = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert best.best_value == pytest.approx(max(float(row["best_val_acc"]) for row in ok))
    assert best.best_params["strategy.unfreeze_from"] == "layer4"
    report = (sweep_dir / "report.md").read_text()
    # The report selects what Optuna selected: the trial with the best validation accuracy.
    assert rows[0]["best_val_acc"] and float(rows[0]["best_val_acc"]) == pytest.approx(best.best_value)
    assert "**Selected on validation: `" in report and f"(job {rows[0]['job']})" in report
    assert f"The job selected above (job {rows[0]['job']}) is that trial" in report
    assert (sweep_dir / "optuna_history.png").is_file() and "![Optimisation history](optuna_history.png)" in report


def test_submitit_local_launcher_runs_each_job_in_its_own_process(tmp_path, env):
    sweep_dir = tmp_path / "sweep"
    result = train(
        "-m",
        "hydra/launcher=local",
        "strategy=scratch,finetune",
        *SHRINK,
        "plots.enabled=false",
        f"hydra.sweep.dir={sweep_dir}",
        env=env,
        cwd=tmp_path,
        timeout=180,
    )
    assert_succeeded(result)

    rows = sorted(read_summary(sweep_dir), key=lambda row: row["job"])
    assert [row["status"] for row in rows] == ["ok", "ok"], rows
    assert ["strategy=scratch" in rows[0]["overrides"], "strategy=finetune" in rows[1]["overrides"]] == [True, True]
    # submitit ran the jobs: each left its own submission folder with the job's pickled result and log.
    job_logs = list((sweep_dir / ".submitit").rglob("*_log.out"))
    assert len(job_logs) == 2, job_logs
    splits = [(sweep_dir / row["job"] / "splits.csv").read_bytes() for row in rows]
    assert splits[0] == splits[1]  # one split for the whole sweep, whichever process ran the job


def test_cross_validation_sweep_groups_folds_in_summary_and_report(tmp_path, env, weights_file):
    sweep_dir = tmp_path / "sweep"
    result = train(
        "-m",
        "data.folds=3",
        "data.fold=0,1,2",
        "strategy=scratch,feature_extraction",
        f"model.pretrained={weights_file}",
        *SHRINK,
        "plots.enabled=false",
        f"hydra.sweep.dir={sweep_dir}",
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert_succeeded(result)
    rows = read_summary(sweep_dir)
    assert len(rows) == 6 and {row["status"] for row in rows} == {"ok"}, rows
    tests = {(sweep_dir / row["job"] / "splits.csv").read_text().count(",test\n") for row in rows}
    assert len(tests) == 1  # one test split for every fold and strategy
    with (sweep_dir / "summary_groups.csv").open(newline="") as f:
        groups = list(csv.DictReader(f))
    assert sorted(g["group"] for g in groups) == ["strategy=feature_extraction", "strategy=scratch"]
    assert all(g["n"] == "3" and g["failed"] == "0" for g in groups)
    report = (sweep_dir / "report.md").read_text()
    assert "## Repeated runs (folds and seeds)" in report
    assert "| 1 | `strategy=" in report and " ± " in report
    print(report)  # the closing note quotes it
