"""Sweeps leaving the basic launcher: an Optuna study (hparams_search=finetune_optuna) and the submitit launcher."""

from __future__ import annotations

import csv

import pytest
from omegaconf import OmegaConf
from test_cli import SHRINK, assert_succeeded, env, torch_home, train  # noqa: F401  (fixtures env, torch_home)

pytestmark = pytest.mark.slow


def read_summary(sweep_dir) -> list[dict[str, str]]:
    with (sweep_dir / "summary.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_optuna_study_records_a_failed_trial_and_goes_on(tmp_path, env):  # noqa: F811
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
    assert_succeeded(result)

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
    assert (sweep_dir / "report.md").is_file()


def test_submitit_local_launcher_runs_each_job_in_its_own_process(tmp_path, env):  # noqa: F811
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

    rows = read_summary(sweep_dir)
    assert [row["status"] for row in rows] == ["ok", "ok"], rows
    assert ["strategy=scratch" in rows[0]["overrides"], "strategy=finetune" in rows[1]["overrides"]] == [True, True]
    # submitit ran the jobs: each left its own submission folder with the job's pickled result and log.
    job_logs = list((sweep_dir / ".submitit").rglob("*_log.out"))
    assert len(job_logs) == 2, job_logs
    splits = [(sweep_dir / row["job"] / "splits.csv").read_bytes() for row in rows]
    assert splits[0] == splits[1]  # one split for the whole sweep, whichever process ran the job
