"""Experiment trackers: logger=mlflow / wandb configs, the whole config, final figures and files for each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytorch_lightning.loggers import WandbLogger

from transferlab.commands.train import run
from transferlab.training.trackers import flat_config, log_config, log_results


def test_logger_groups_combine(config):
    assert list(config("logger=mlflow", "logger.mlflow.tracking_uri=file:/x").logger) == ["csv", "mlflow"]
    assert list(config("logger=[csv,tensorboard,mlflow,wandb]").logger) == ["csv", "tensorboard", "mlflow", "wandb"]
    flat = flat_config(config("augment=strong"))
    assert flat["trainer.max_epochs"] == 2 and flat["seed"] == 42 and flat["data.image_size"] == 32
    assert "augment.rot90" in flat or any(key.startswith("augment.") for key in flat)


class FakeWandbRun:
    """What WandbLogger calls on ``wandb.Run``: config.update, log, save."""

    def __init__(self) -> None:
        self.config, self.logged, self.saved = _Config(), {}, []

    def log(self, metrics, step=None):
        self.logged.update(metrics)

    def save(self, path, base_path=None, policy="live"):
        self.saved.append(str(Path(path).relative_to(base_path)))


class _Config(dict):
    def update(self, params, allow_val_change=False):
        super().update(params)


class StubWandbLogger(WandbLogger):
    """Lightning's WandbLogger on a stand-in run: wandb is not installed here (nor reachable)."""

    def __init__(self) -> None:
        self._run, self._prefix, self._wandb_init, self._log_model = FakeWandbRun(), "", {}, False

    @property
    def experiment(self) -> FakeWandbRun:
        return self._run


def test_wandb_gets_config_figures_and_files(config, tmp_path):
    logger = StubWandbLogger()
    log_config([logger], config("data.batch_size=4"))
    assert logger.experiment.config["data.batch_size"] == 4
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "learning_curves.png").write_bytes(b"png")
    (tmp_path / "metrics.json").write_text("{}")
    files = [tmp_path / "metrics.json", tmp_path / "plots" / "learning_curves.png"]
    log_results([logger], {"test_acc": 0.5, "class_names": ["a"]}, files, root=tmp_path, step=3)
    assert logger.experiment.logged["final/test_acc"] == 0.5
    assert logger.experiment.saved == ["metrics.json", "plots/learning_curves.png"]


def test_mlflow_run_has_the_whole_config_final_metrics_and_files(config, tmp_path):
    mlflow = pytest.importorskip("mlflow", reason="logger=mlflow needs the trackers group: uv sync --group trackers")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"  # a real local store, as logger=mlflow's default
    overrides = ["logger=[csv,mlflow]", f"logger.mlflow.tracking_uri={store}", "trainer.max_epochs=1"]
    overrides.append(f"logger.mlflow.artifact_location={tmp_path / 'mlartifacts'}")
    metrics = run(config(*overrides, "plots.enabled=true"))
    client = mlflow.MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("transferlab")
    (found,) = client.search_runs([experiment.experiment_id])
    params = found.data.params
    assert params["trainer.max_epochs"] == "1" and params["data.image_size"] == "32" and params["seed"] == "42"
    assert params["data.root"] == str(config().data.root)
    assert found.data.metrics["final/test_acc"] == pytest.approx(metrics["test_acc"])
    assert found.data.metrics["final/best_val_acc"] == pytest.approx(metrics["best_val_acc"])
    assert "val/acc" in found.data.metrics  # Lightning's own logging still goes there
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    plots = {a.path for a in client.list_artifacts(found.info.run_id, "plots")}
    assert "metrics.json" in artifacts and "plots/learning_curves.png" in plots, (artifacts, plots)
    local = client.download_artifacts(found.info.run_id, "metrics.json", str(tmp_path / "download"))
    assert json.loads(Path(local).read_text())["test_acc"] == metrics["test_acc"]
