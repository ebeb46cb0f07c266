"""The notebooks run top to bottom, shrunk, in a fresh kernel, writing only under tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from omegaconf import OmegaConf

pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute(name: str, tmp_path: Path, monkeypatch, **env: str) -> list[dict]:
    """Runs notebooks/<name> in a fresh kernel (which inherits this process's environment); returns its outputs."""
    monkeypatch.setenv("TRANSFERLAB_NOTEBOOK_DIR", str(tmp_path / "work"))
    monkeypatch.setenv("TRANSFERLAB_CACHE", str(tmp_path / "cache"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": NOTEBOOKS}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if any cell fails
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]


def text_of(outputs: list[dict]) -> str:
    return "".join(output.get("text", "") for output in outputs)


def pngs_in(outputs: list[dict]) -> int:
    return sum("image/png" in output.get("data", {}) for output in outputs)


@pytest.mark.parametrize("name", ["walkthrough.ipynb", "explore_dataset.ipynb", "compare_strategies.ipynb"])
def test_notebooks_are_saved_without_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


def test_walkthrough_notebook_runs(tmp_path: Path, monkeypatch) -> None:
    outputs = execute("walkthrough.ipynb", tmp_path, monkeypatch, TRANSFERLAB_NOTEBOOK_FAST="1")
    text = text_of(outputs)
    assert "test accuracy" in text and "stars recognised" in text
    assert pngs_in(outputs) == 5  # 4 run plots + val confusion
    assert (tmp_path / "work" / "run" / "metrics.json").is_file()


def test_explore_dataset_notebook_counts_and_draws(tmp_path: Path, monkeypatch, shapes_root: Path) -> None:
    outputs = execute("explore_dataset.ipynb", tmp_path, monkeypatch, TRANSFERLAB_NOTEBOOK_DATA=str(shapes_root))
    text = text_of(outputs)
    assert f"75 images in 5 classes under {shapes_root}" in text
    assert "        triangle     15" in text and "largest / smallest class: 1.0" in text
    assert "shorter side: min 32, median 32, max 32 px" in text  # the shapes are 32 px squares
    assert pngs_in(outputs) == 3  # class counts, sample grid, size histograms
    assert (tmp_path / "work" / "explore" / "samples.png").stat().st_size > 1000


def make_sweep(sweep: Path) -> dict[str, dict]:
    """Three finished jobs as train.py leaves them (metrics.json, .hydra/, logs/), without training anything."""
    jobs = {
        "0": ("scratch", 0, [0.3, 0.4, 0.5], 0.45, 1_000),
        "1": ("feature_extraction", 0, [0.5, 0.7, 0.6], 0.65, 500),
        "2": ("finetune", 1, [0.6, 0.8, 0.9], 0.85, 11_000),
    }
    written = {}
    for job, (strategy, freeze_epochs, val_acc, test_acc, params) in jobs.items():
        job_dir = sweep / job
        (job_dir / ".hydra").mkdir(parents=True)
        overrides = [f"strategy={strategy}"] + ([f"strategy.freeze_epochs={freeze_epochs}"] if freeze_epochs else [])
        OmegaConf.save(OmegaConf.create(overrides), job_dir / ".hydra" / "overrides.yaml")
        config = {"strategy": {"name": strategy, "freeze_epochs": freeze_epochs}, "model": {"backbone": "resnet18"}}
        OmegaConf.save(OmegaConf.create(config), job_dir / ".hydra" / "config.yaml")
        rows = [f"{e},{3 * e + 2},{1.5 - 0.3 * e},{acc - 0.1},{1.4 - 0.3 * e},{acc}" for e, acc in enumerate(val_acc)]
        log = job_dir / "logs" / "version_0" / "metrics.csv"
        log.parent.mkdir(parents=True)
        log.write_text("epoch,step,train/loss_epoch,train/acc,val/loss,val/acc\n" + "\n".join(rows) + "\n")
        metrics = {
            "best_val_acc": max(val_acc),
            "test_acc": test_acc,
            "test_f1": test_acc - 0.05,
            "epochs": len(val_acc),
            "fit_seconds": 6.0 * len(val_acc),
            "trainable_params": params,
        }
        (job_dir / "metrics.json").write_text(json.dumps(metrics))
        written[job] = metrics
    return written


def test_compare_strategies_notebook_reports_the_sweep(tmp_path: Path, monkeypatch) -> None:
    sweep = tmp_path / "sweep"
    make_sweep(sweep)
    outputs = execute("compare_strategies.ipynb", tmp_path, monkeypatch, TRANSFERLAB_SWEEP_DIR=str(sweep))
    lines = text_of(outputs).splitlines()
    # job, strategy, best val acc, test acc, epochs to best, seconds per epoch, trainable parameters; best first
    table = [line.split() for line in lines if line.split() and line.split()[0] in {"0", "1", "2"}]
    assert table == [
        ["2", "finetune", "0.900", "0.850", "3", "6.0", "11,000"],
        ["1", "feature_extraction", "0.700", "0.650", "2", "6.0", "500"],
        ["0", "scratch", "0.500", "0.450", "3", "6.0", "1,000"],
    ]
    assert (
        "selected on validation: job 2 (strategy=finetune strategy.freeze_epochs=1), val accuracy 0.900, "
        "test accuracy 0.850" in lines
    )
    report = (sweep / "report.md").read_text()
    assert "**Selected on validation: `strategy=finetune strategy.freeze_epochs=1`** (job 2)" in report
    shown = [output["data"]["text/markdown"] for output in outputs if "text/markdown" in output.get("data", {})]
    assert shown == [report]
    assert pngs_in(outputs) == 2  # report.png and the best job's learning curves
    assert (tmp_path / "work" / "compare" / "learning_curves_job2.png").stat().st_size > 1000
