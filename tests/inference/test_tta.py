"""Test-time augmentation: the softmax averaged over the eval crop's flip (and rot90 turns for runs trained with
rot90), in eval.py, predict.py and Predictor."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
from helpers import command_config, train_once
from omegaconf import OmegaConf

from transferlab import Predictor
from transferlab.commands.eval import evaluate
from transferlab.commands.predict import predict
from transferlab.inference.image_files import network_input
from transferlab.inference.trained_model import load_classifier, trained_with_rot90
from transferlab.inference.tta import FLIPS, ROTATIONS
from transferlab.runs.layout import read_confusion_matrix


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, shapes_root: Path) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.getbasetemp() / "trained_run"
    return run_dir, train_once(run_dir, shapes_root)  # augment=light: rot90 0


def by_hand(model, paths: list[Path], turns: tuple[int, ...] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """The plain probabilities, and the TTA ones as the mean over the normalised crop, its mirror and its turns."""
    batch = torch.stack([network_input(model, path) for path in paths])
    views = [batch, batch.flip(-1), *(batch.rot90(k, dims=(2, 3)) for k in turns)]
    with torch.no_grad():
        probs = [model(view).softmax(dim=1) for view in views]
    assert (probs[0] - probs[1]).abs().max() > 1e-3, "the flip must matter for this test to mean anything"
    return probs[0], torch.stack(probs).mean(dim=0)


def moved_run(run_dir: Path, tmp_path: Path, rot90: float) -> Path:
    """A copy of the trained run whose saved config says it trained with ``augment.rot90=rot90``, and whose checkpoint
    carries no ``augment`` hparam (as those saved before it was kept); the checkpoint's path."""
    copy = tmp_path / "run"
    (copy / "checkpoints").mkdir(parents=True)
    (copy / ".hydra").mkdir()
    ckpt = next(run_dir.glob("checkpoints/best-*.ckpt"))
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True)
    checkpoint["hyper_parameters"].pop("augment", None)
    torch.save(checkpoint, copy / "checkpoints" / ckpt.name)
    shutil.copy(run_dir / "splits.csv", copy / "splits.csv")
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    cfg.augment.rot90 = rot90
    OmegaConf.save(cfg, copy / ".hydra" / "config.yaml")
    return copy / "checkpoints" / ckpt.name


def test_eval_with_tta_averages_the_flip_and_reports_both(trained, shapes_root: Path, tmp_path: Path, capsys) -> None:
    _, run_metrics = trained
    best = run_metrics["best_ckpt"]
    result = evaluate(command_config("eval", tmp_path, f"ckpt_path={best}", "tta=true", "plots.enabled=false"))

    with (tmp_path / "predictions.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    model = load_classifier(best)
    plain, tta = by_hand(model, [shapes_root / row["path"] for row in rows])
    for row, probs in zip(rows, tta, strict=True):
        assert float(row["probability"]) == pytest.approx(probs.max().item(), abs=1e-4)  # the TTA probabilities
        assert row["predicted"] == model.class_names[probs.argmax()]

    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["tta"] is True and saved["tta_views"] == ["identity", "hflip"]  # trained without rot90
    names = [row["true"] for row in rows]
    targets = torch.tensor([model.class_names.index(name) for name in names])
    assert saved["acc"] == pytest.approx((tta.argmax(1) == targets).float().mean().item())
    assert saved["no_tta"]["acc"] == pytest.approx((plain.argmax(1) == targets).float().mean().item())
    assert saved["no_tta"]["acc"] == pytest.approx(run_metrics["test_acc"])  # the run's own test figure
    assert set(saved["no_tta"]) == {"acc", "precision", "recall", "f1"}
    assert read_confusion_matrix(tmp_path, saved) == result["confusion_matrix"]  # in confusion_matrix.csv
    assert {k: v for k, v in saved.items() if k != "confusion_matrix_file"} == {
        k: v for k, v in result.items() if k != "confusion_matrix"
    }
    printed = capsys.readouterr().out
    assert f"accuracy {saved['acc']:.4f} on 15 images" in printed
    assert f"with TTA (2 views); {saved['no_tta']['acc']:.4f} without" in printed

    plain_eval = evaluate(command_config("eval", tmp_path / "plain", f"ckpt_path={best}", "plots.enabled=false"))
    assert plain_eval["tta"] is False and "no_tta" not in plain_eval and "tta_views" not in plain_eval


def test_predict_and_predictor_with_tta(trained, shapes_root: Path, tmp_path: Path) -> None:
    _, run_metrics = trained
    best = run_metrics["best_ckpt"]
    paths = sorted((shapes_root / "star").glob("*.png"))[:4]
    model = load_classifier(best)
    plain, tta = by_hand(model, paths)

    predictor = Predictor.from_checkpoint(best, device="cpu")
    torch.testing.assert_close(predictor.probs(paths, tta=True), tta, atol=1e-6, rtol=0)
    torch.testing.assert_close(predictor.probs(paths), plain, atol=1e-6, rtol=0)
    rows = predict(command_config("predict", tmp_path, f"ckpt_path={best}", f"input={paths[0].parent}", "tta=true"))
    by_path = {row["path"]: row for row in rows}
    for path, probs in zip(paths, tta, strict=True):
        assert by_path[str(path)]["top1"] == model.class_names[probs.argmax()]
        assert by_path[str(path)]["top1_probability"] == pytest.approx(probs.max().item(), abs=1e-4)


def test_tta_must_be_a_bool(trained, tmp_path: Path) -> None:
    _, run_metrics = trained
    best = run_metrics["best_ckpt"]
    with pytest.raises(ValueError, match=r"tta='yes' must be true or false"):
        evaluate(command_config("eval", tmp_path, f"ckpt_path={best}", "tta=yes"))
    with pytest.raises(ValueError, match=r"tta=1 must be true or false"):
        predict(command_config("predict", tmp_path, f"ckpt_path={best}", f"input={tmp_path}", "tta=1"))
    with pytest.raises(ValueError, match=r"tta='true' must be true or false"):
        Predictor.from_checkpoint(best, device="cpu").predict([], tta="true")


def test_rot90_views_only_for_runs_trained_with_rot90(trained, shapes_root: Path, tmp_path: Path) -> None:
    run_dir, run_metrics = trained
    best = run_metrics["best_ckpt"]
    model = load_classifier(best)
    model.hparams.augment = None  # a checkpoint from before augment was kept: the run's saved config tells
    assert not trained_with_rot90(model, best)  # augment=light
    rotated = moved_run(run_dir, tmp_path, rot90=0.5)
    assert trained_with_rot90(model, rotated)
    assert not trained_with_rot90(model)  # no run to ask: an old checkpoint outside its run counts as without
    model.hparams.augment = {"rot90": 0.5}  # what the checkpoint carries once run.py saves augment
    assert trained_with_rot90(model)
    model.hparams.augment = {"rot90": 0.0}
    assert not trained_with_rot90(model, rotated)  # the checkpoint's own word wins over the run's config

    paths = sorted((shapes_root / "circle").glob("*.png"))[:3]
    _, tta = by_hand(model, paths, turns=(1, 2, 3))
    predictor = Predictor.from_checkpoint(rotated, device="cpu")
    assert predictor.tta_views == FLIPS + ROTATIONS
    torch.testing.assert_close(predictor.probs(paths, tta=True), tta, atol=1e-6, rtol=0)
    assert Predictor.from_checkpoint(best, device="cpu").tta_views == FLIPS

    out = tmp_path / "eval"
    result = evaluate(command_config("eval", out, f"ckpt_path={rotated}", "tta=true", "plots.enabled=false"))
    assert result["tta_views"] == ["identity", "hflip", "rot90", "rot180", "rot270"]
