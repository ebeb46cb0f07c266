"""eval: which images, the metrics, the files it writes; and the plots written at the end of a training run."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
from helpers import CONF_DIR, command_config, train_once
from hydra import compose, initialize_config_dir
from matplotlib.image import imread

from transferlab.commands.eval import evaluate, select_images
from transferlab.commands.train import run
from transferlab.inference.metrics import compute_metrics
from transferlab.inference.trained_model import find_checkpoint
from transferlab.launch.resolvers import beside_run
from transferlab.runs.layout import EVAL_DIR, EXPORT_DIR, PREDICT_DIR
from transferlab.training.finetuning import Strategy

CLASSES = ["circle", "ellipse", "rectangle", "star", "triangle"]


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, shapes_root: Path) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.getbasetemp() / "trained_run"
    return run_dir, train_once(run_dir, shapes_root)


def eval_config(ckpt_path: str | Path, output_dir: Path, *overrides: str):
    return command_config("eval", output_dir, f"ckpt_path={ckpt_path}", *overrides)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_eval_of_the_test_split_reproduces_the_runs_test_metrics(trained, tmp_path: Path, capsys) -> None:
    run_dir, run_metrics = trained
    result = evaluate(eval_config(run_metrics["best_ckpt"], tmp_path))
    assert result["checkpoint"] == run_metrics["best_ckpt"]
    assert result["acc"] == pytest.approx(run_metrics["test_acc"])
    assert result["f1"] == pytest.approx(run_metrics["test_f1"])
    assert result["confusion_matrix"] == run_metrics["test_confusion_matrix"]
    assert result["num_images"] == 15 and result["unreadable"] == [] and result["split"] == "test"
    printed = capsys.readouterr().out
    assert all(name in printed for name in CLASSES) and "macro" in printed
    assert f"accuracy {result['acc']:.4f} on 15 images" in printed
    assert json.loads((tmp_path / "metrics.json").read_text())["acc"] == pytest.approx(result["acc"])

    per_class = read_csv(tmp_path / "per_class.csv")
    assert [row["class"] for row in per_class] == CLASSES
    assert [int(row["support"]) for row in per_class] == [3] * 5
    predictions = read_csv(tmp_path / "predictions.csv")
    test_paths = {row["path"] for row in read_csv(run_dir / "splits.csv") if row["split"] == "test"}
    assert {row["path"] for row in predictions} == test_paths
    assert sum(int(row["correct"]) for row in predictions) == round(15 * result["acc"])
    for name in ("confusion_matrix", "worst_predictions", "samples", "learning_curves"):
        assert imread(tmp_path / "plots" / f"{name}.png").ndim == 3, name


def test_a_training_run_writes_its_plots(trained) -> None:
    run_dir, _ = trained
    for name in ("learning_curves", "confusion_matrix", "worst_predictions", "samples", "training_samples"):
        image = imread(run_dir / "plots" / f"{name}.png")
        assert image.shape[0] > 100 and image.shape[1] > 100, name


def test_run_without_plots_writes_none(config, tmp_path: Path) -> None:
    run(config("trainer.max_epochs=1", "plots.enabled=false"))
    assert not (tmp_path / "run" / "plots").exists()


def test_eval_on_another_labelled_folder_with_a_subset_of_classes(trained, shapes_root: Path, tmp_path: Path) -> None:
    _, run_metrics = trained
    folder = tmp_path / "new"
    for name in ("star", "circle"):
        shutil.copytree(shapes_root / name, folder / name)
    (folder / "star" / "broken.png").write_bytes(b"not an image")
    # A checkpoint outside any run's checkpoints/ folder needs nothing but itself and the folder.
    loose = shutil.copy(run_metrics["best_ckpt"], tmp_path / "model.ckpt")
    result = evaluate(eval_config(loose, tmp_path / "out", f"data.root={folder}", "plots.enabled=false"))
    assert result["split"] == "all" and result["num_images"] == 30
    assert result["unreadable"] == ["star/broken.png"]
    assert [result["per_class"][name]["support"] for name in CLASSES] == [15, 0, 0, 15, 0]
    assert not (tmp_path / "out" / "plots").exists()
    with pytest.raises(ValueError, match=r"not inside a run's checkpoints/ folder.*pass data.root=<a labelled folder>"):
        evaluate(eval_config(loose, tmp_path / "out"))

    (folder / "dog").mkdir()
    shutil.copy(shapes_root / "star" / "star_0000.png", folder / "dog")
    with pytest.raises(ValueError, match=r"classes \['dog'\] that .* was not trained on"):
        evaluate(eval_config(run_metrics["best_ckpt"], tmp_path / "out", f"data.root={folder}"))


def test_eval_needs_an_existing_ckpt_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"ckpt_path is required: pass ckpt_path=<run_dir>/checkpoints/"):
        evaluate(command_config("eval", tmp_path))
    with pytest.raises(FileNotFoundError, match=r"ckpt_path=.*nope\.ckpt: no such checkpoint file"):
        evaluate(eval_config(tmp_path / "nope.ckpt", tmp_path))


def test_select_images_reads_the_runs_split_and_data_root(trained, shapes_root: Path, tmp_path: Path) -> None:
    run_dir, _ = trained
    val = select_images(run_dir, "val", None)
    assert len(val.paths) == 15 and sorted(set(val.labels)) == CLASSES
    # The run's split, read from the data where it is now (a moved data folder).
    moved = select_images(run_dir, "test", shapes_root)
    assert moved.root == shapes_root and len(moved.paths) == 15
    assert len(select_images(run_dir, None, shapes_root).paths) == 75  # a folder alone: all its images
    with pytest.raises(ValueError, match="split='valid' must be one of train, val, test, all"):
        select_images(run_dir, "valid", None)
    with pytest.raises(FileNotFoundError, match=r"split=test needs the splits.csv of the checkpoint's run"):
        select_images(None, "test", shapes_root)
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(run_dir / "splits.csv", bare / "splits.csv")
    with pytest.raises(FileNotFoundError, match=r"config.yaml does not exist: pass data.root="):
        select_images(bare, "test", None)


def test_outputs_go_beside_the_checkpoints_run(trained, tmp_path: Path) -> None:
    run_dir, run_metrics = trained
    best = run_metrics["best_ckpt"]

    def command_dir(command: str, *overrides: str) -> str:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(command, overrides=list(overrides), return_hydra_config=True).hydra.run.dir

    def eval_dir(*overrides: str) -> str:
        return command_dir("eval", *overrides)

    # The folders the configs name (YAML cannot import them) are the ones rundir.py names.
    assert eval_dir(f"ckpt_path={best}") == str(run_dir / EVAL_DIR / "test")
    assert eval_dir(f"ckpt_path={best}", "split=val") == str(run_dir / EVAL_DIR / "val")
    assert eval_dir(f"ckpt_path={best}", f"data.root={tmp_path}") == str(run_dir / EVAL_DIR / "all")
    assert Path(command_dir("predict", f"ckpt_path={best}", "input=x")).parent == run_dir / PREDICT_DIR
    assert command_dir("export", f"ckpt_path={best}") == str(run_dir / EXPORT_DIR)
    loose = shutil.copy(best, tmp_path / "model.ckpt")
    assert eval_dir(f"ckpt_path={loose}").startswith("outputs/") and eval_dir(f"ckpt_path={loose}").endswith("-eval")
    assert beside_run(run_dir / "checkpoints" / "missing.ckpt", "export", "fallback") == "fallback"
    assert beside_run(None, "export", "fallback") == "fallback"


def test_unfreeze_epochs_mark_every_step_of_the_strategy() -> None:
    stages = ["stem", "layer1", "layer2", "layer3", "layer4"]
    assert Strategy("finetune", freeze_epochs=2).unfreeze_epochs(stages) == [2]
    assert Strategy("finetune").unfreeze_epochs(stages) == []
    assert Strategy("scratch").unfreeze_epochs(stages) == []
    assert Strategy("feature_extraction").unfreeze_epochs(stages) == []
    # Gradual: the last stage at the end of the warm-up, then one more every 2 epochs, down to layer3.
    gradual = Strategy("finetune", freeze_epochs=1, unfreeze_every=2, unfreeze_from="layer3")
    assert gradual.unfreeze_epochs(stages) == [1, 3]
    assert [len(gradual.trainable_stages(e, stages)) for e in range(5)] == [1, 2, 2, 3, 3]  # head included
    # Without a warm-up the first stage trains from epoch 0: only the later steps are marked.
    assert Strategy("finetune", unfreeze_every=3).unfreeze_epochs(stages) == [3, 6, 9, 12]


def test_compute_metrics_per_class_and_macro() -> None:
    # truth 0 0 1 1 2 2, predicted 0 1 1 1 2 0
    predicted = torch.tensor([0, 1, 1, 1, 2, 0])
    probs = torch.nn.functional.one_hot(predicted, 3).float()
    metrics = compute_metrics(probs, torch.tensor([0, 0, 1, 1, 2, 2]), ["a", "b", "c"])
    assert metrics["acc"] == pytest.approx(4 / 6)
    assert metrics["per_class"]["a"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert metrics["per_class"]["b"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert metrics["per_class"]["c"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert metrics["recall"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert metrics["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_find_checkpoint_best_last_or_a_path(trained, tmp_path: Path) -> None:
    run_dir, run_metrics = trained
    assert str(find_checkpoint(run_dir)) == run_metrics["best_ckpt"]
    assert find_checkpoint(run_dir, "last") == run_dir / "checkpoints" / "last.ckpt"
    assert find_checkpoint(run_dir, run_metrics["best_ckpt"]) == Path(run_metrics["best_ckpt"])
    with pytest.raises(FileNotFoundError, match="has no checkpoints/ folder: point run_dir at the output folder"):
        find_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"ckpt=nope\.ckpt: no such checkpoint file"):
        find_checkpoint(run_dir, "nope.ckpt")


def test_worst_predictions_are_labelled_with_their_sort_key(trained, shapes_root, monkeypatch, tmp_path) -> None:
    from transferlab.inference.trained_model import load_classifier
    from transferlab.reports import run_plots as figures

    run_dir, _ = trained
    model = load_classifier(find_checkpoint(run_dir))
    paths = [next((shapes_root / "circle").iterdir())] * 3
    probs = torch.tensor([[0.1, 0.7, 0.1, 0.05, 0.05], [0.6, 0.1, 0.1, 0.1, 0.1], [0.02, 0.9, 0.04, 0.02, 0.02]])
    targets = torch.tensor([0, 0, 0])
    drawn = {}
    monkeypatch.setattr(figures, "plot_image_grid", lambda images, titles, path, **kw: drawn.setdefault("t", titles))
    predictions = figures.Predictions(paths=paths, probs=probs, unreadable=[])
    figures.plot_predictions(model, predictions, targets, tmp_path, worst=2, samples=0)
    # Sorted by the true class's probability (0.02, then 0.10), and labelled with it, not with the winner's.
    assert drawn["t"] == ["circle → ellipse\np(true)=0.02", "circle → ellipse\np(true)=0.10"]
