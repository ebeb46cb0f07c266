"""run(cfg) end to end through the real Hydra config: outputs, resume, skipping finished runs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from transferlab.commands.train import run
from transferlab.runs.layout import read_confusion_matrix
from transferlab.training.classifier import ImageClassifier


@pytest.mark.parametrize("strategy", ["scratch", "feature_extraction", "finetune"])
def test_each_strategy_trains_tests_and_writes_its_files(config, tmp_path: Path, strategy: str) -> None:
    metrics = run(config(f"strategy={strategy}", "trainer.max_epochs=1"))
    run_dir = tmp_path / "run"
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["test_acc"] == pytest.approx(metrics["test_acc"])
    assert 0.0 <= saved["test_acc"] <= 1.0 and 0.0 <= saved["best_val_acc"] <= 1.0
    assert saved["epochs"] == 1
    assert saved["class_names"] == ["circle", "ellipse", "rectangle", "star", "triangle"]
    matrix = read_confusion_matrix(run_dir, saved)
    assert saved["test_confusion_matrix_file"] == "confusion_matrix.csv" and matrix == metrics["test_confusion_matrix"]
    assert len(matrix) == 5 and sum(map(sum, matrix)) == 15  # 5 classes × 3 test images
    with open(run_dir / "splits.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert {row["split"] for row in rows} == {"train", "val", "test"} and len(rows) == 75
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    logged = (run_dir / "logs" / "version_0" / "metrics.csv").read_text().splitlines()[0]
    assert "val/acc" in logged and "train/loss_epoch" in logged
    assert "lr-AdamW/head" in logged


def test_trainable_parameter_count_follows_the_strategy(config, tmp_path: Path) -> None:
    frozen = run(config("strategy=feature_extraction", "trainer.max_epochs=1", output_dir=tmp_path / "fe"))
    full = run(config("strategy=scratch", "trainer.max_epochs=1", output_dir=tmp_path / "scratch"))
    assert frozen["trainable_params"] == 512 * 5 + 5  # the head alone
    assert full["trainable_params"] > 11_000_000


def test_checkpoint_reloads_from_itself_with_classes_and_preprocessing(config, tmp_path: Path) -> None:
    metrics = run(config("strategy=finetune", "trainer.max_epochs=1", "model.head.hidden_dim=16"))
    model = ImageClassifier.load_from_checkpoint(metrics["best_ckpt"], map_location="cpu", weights_only=True)
    assert model.class_names == ["circle", "ellipse", "rectangle", "star", "triangle"]
    assert model.hparams.preprocessing["image_size"] == 32
    assert model.hparams.preprocessing["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert model.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 5)


def test_interrupted_run_resumes_to_the_same_weights(config, tmp_path: Path) -> None:
    common = [
        "strategy=finetune",
        "strategy.freeze_epochs=1",
        "trainer.max_epochs=3",
        "trainer.deterministic=true",
        "augment=strong",
        "model.head.dropout=0.2",
    ]
    run(config(*common, output_dir=tmp_path / "straight"))

    interrupted = tmp_path / "interrupted"
    crash = ["+callbacks.interrupt._target_=helpers.InterruptAtEpoch", "+callbacks.interrupt.epoch=2"]
    with pytest.raises(InterruptedError):
        run(config(*common, *crash, output_dir=interrupted))
    assert not (interrupted / "metrics.json").exists()
    splits_before = (interrupted / "splits.csv").read_bytes()
    run(config(*common, "ckpt_path=auto", output_dir=interrupted))

    straight = torch.load(tmp_path / "straight/checkpoints/last.ckpt", weights_only=True)
    resumed = torch.load(interrupted / "checkpoints/last.ckpt", weights_only=True)
    assert resumed["epoch"] == straight["epoch"] == 2
    for key, value in straight["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key
    assert (interrupted / "splits.csv").read_bytes() == splits_before


def test_ckpt_auto_skips_a_finished_run(config, tmp_path: Path) -> None:
    first = run(config("trainer.max_epochs=1", "ckpt_path=auto"))
    metrics_file = tmp_path / "run" / "metrics.json"
    stamp = metrics_file.stat().st_mtime_ns
    again = run(config("trainer.max_epochs=1", "ckpt_path=auto"))
    assert again["test_acc"] == pytest.approx(first["test_acc"])
    assert metrics_file.stat().st_mtime_ns == stamp


def test_resuming_on_other_classes_names_both_lists(config, tmp_path: Path) -> None:
    first = run(config("trainer.max_epochs=1"))
    other = tmp_path / "other"
    for name in ("cat", "dog"):
        (other / name).mkdir(parents=True)
        src = Path(config().data.root) / "circle"
        for i, image in enumerate(sorted(src.iterdir())[:10]):
            (other / name / f"{i}.png").write_bytes(image.read_bytes())
    cfg = config(f"data.root={other}", f"ckpt_path={first['best_ckpt']}", output_dir=tmp_path / "second")
    with pytest.raises(ValueError, match=r"trained on classes \['circle'.*but data.root has \['cat', 'dog'\]"):
        run(cfg)
