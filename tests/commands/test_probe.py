"""The linear-probe baseline: the logistic regression, and a probe run on the same split as training runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import command_config, train_once

from transferlab.commands.probe import fit_logistic_regression, linear_probe
from transferlab.runs.layout import read_confusion_matrix

SHRINK = [
    "data=folder",
    "data.image_size=32",
    "data.batch_size=16",
    "data.num_workers=0",
    "data.val_fraction=0.2",
    "data.test_fraction=0.2",
    "probe.weight_decays=[0.01,1.0]",
    "probe.max_iter=50",
]


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, shapes_root: Path) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.getbasetemp() / "trained_run"
    return run_dir, train_once(run_dir, shapes_root)


def test_logistic_regression_separates_separable_data_and_weight_decay_shrinks_it() -> None:
    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0]])
    y = torch.arange(3).repeat(30)
    x = centres[y] + torch.randn(90, 2, generator=generator)
    loose = fit_logistic_regression(x, y, 3, weight_decay=1e-4, max_iter=100)
    tight = fit_logistic_regression(x, y, 3, weight_decay=1.0, max_iter=100)
    assert (loose(x).argmax(1) == y).all()
    assert tight.weight.norm() < loose.weight.norm() / 2


def test_probe_writes_run_metrics_on_the_training_split(trained, shapes_root, weights_file, tmp_path: Path) -> None:
    run_dir, _ = trained
    overrides = [*SHRINK, f"data.root={shapes_root}", f"model.weights={weights_file}"]
    metrics = linear_probe(command_config("probe", tmp_path, *overrides))
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["test_acc"] == pytest.approx(metrics["test_acc"]) and 0 <= saved["test_acc"] <= 1
    assert saved["strategy"] == "linear_probe" and saved["weight_decay"] in (0.01, 1.0)
    assert saved["trainable_params"] == 512 * 5 + 5
    assert sum(map(sum, read_confusion_matrix(tmp_path, saved))) == 15
    assert set(saved["test_per_class_acc"]) == {"circle", "ellipse", "rectangle", "star", "triangle"}
    # Same data settings, same split as the training run: the comparison is on identical test images.
    assert (tmp_path / "splits.csv").read_bytes() == (run_dir / "splits.csv").read_bytes()


def test_probe_refuses_random_features_and_a_hidden_layer(shapes_root, tmp_path: Path) -> None:
    base = [*SHRINK, f"data.root={shapes_root}"]
    with pytest.raises(ValueError, match=r"model\.weights=null: a linear probe of random features"):
        linear_probe(command_config("probe", tmp_path, *base, "model.weights=null"))
    with pytest.raises(ValueError, match=r"leave model\.head\.hidden_dim and model\.head\.dropout unset"):
        linear_probe(command_config("probe", tmp_path, *base, "model.head.hidden_dim=64"))
