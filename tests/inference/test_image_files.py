"""predict: finding images, batched probabilities with the checkpoint's preprocessing, predictions.csv."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import torch
from helpers import command_config, train_once

from transferlab.commands.eval import evaluate
from transferlab.commands.predict import predict
from transferlab.data.images import list_images, read_rgb
from transferlab.inference.image_files import network_input, preprocessed_image
from transferlab.inference.trained_model import load_classifier

CLASSES = ["circle", "ellipse", "rectangle", "star", "triangle"]


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, shapes_root: Path) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.getbasetemp() / "trained_run"
    return run_dir, train_once(run_dir, shapes_root)


def test_predict_writes_top_k_rows_and_flags_unreadable_files(
    trained, shapes_root: Path, tmp_path: Path, capsys
) -> None:
    _, run_metrics = trained
    inputs = tmp_path / "photos"
    shutil.copytree(shapes_root / "star", inputs / "nested")
    (inputs / "broken.jpg").write_bytes(b"not a jpeg")
    (inputs / ".hidden.png").write_bytes(b"editor debris")
    (inputs / "notes.txt").write_text("not an image")
    best = run_metrics["best_ckpt"]
    rows = predict(command_config("predict", tmp_path / "out", f"ckpt_path={best}", f"input={inputs}", "top_k=2"))

    assert len(rows) == 16  # 15 stars + the broken file; hidden and non-image files skipped
    with (tmp_path / "out" / "predictions.csv").open(newline="") as file:
        saved = list(csv.DictReader(file))
    assert list(saved[0]) == ["path", "top1", "top1_probability", "top2", "top2_probability", "error"]
    broken = [row for row in saved if row["path"].endswith("broken.jpg")]
    assert broken[0]["error"] == "unreadable image" and broken[0]["top1"] == ""
    good = [row for row in saved if not row["error"]]
    assert len(good) == 15
    for row in good:
        assert row["top1"] in CLASSES and row["top2"] in CLASSES and row["top1"] != row["top2"]
        assert 1.0 >= float(row["top1_probability"]) >= float(row["top2_probability"]) >= 0.0
    printed = capsys.readouterr().out
    assert "Predictions (16 image(s)" in printed and "1 unreadable file(s):" in printed
    first = good[0]  # the table row of the first readable image: file, top-1 class and its probability
    name, top1, probability = Path(first["path"]).name, first["top1"], float(first["top1_probability"])
    assert re.search(rf"{re.escape(name)}\s*│\s*{top1}\s*│\s*{probability:.2f}", printed), printed


def test_predict_needs_an_input_and_an_existing_checkpoint(trained, tmp_path: Path) -> None:
    _, run_metrics = trained
    with pytest.raises(ValueError, match=r"input is required: pass input=<an image file or a folder of images>"):
        predict(command_config("predict", tmp_path, f"ckpt_path={run_metrics['best_ckpt']}"))
    with pytest.raises(ValueError, match="ckpt_path is required"):
        predict(command_config("predict", tmp_path, f"input={tmp_path}"))
    with pytest.raises(FileNotFoundError, match=r"ckpt_path=.*nope\.ckpt: no such checkpoint file"):
        predict(command_config("predict", tmp_path, f"ckpt_path={tmp_path / 'nope.ckpt'}", f"input={tmp_path}"))


def test_predict_agrees_with_eval(trained, shapes_root: Path, tmp_path: Path) -> None:
    _, run_metrics = trained
    best = run_metrics["best_ckpt"]
    evaluate(command_config("eval", tmp_path / "eval", f"ckpt_path={best}", "plots.enabled=false"))
    with (tmp_path / "eval" / "predictions.csv").open(newline="") as file:
        evaluated = list(csv.DictReader(file))
    rows = predict(command_config("predict", tmp_path / "predict", f"ckpt_path={best}", f"input={shapes_root}"))
    predicted = {row["path"]: row for row in rows}
    assert len(predicted) == 75
    for row in evaluated:
        mine = predicted[str(shapes_root / row["path"])]
        assert mine["top1"] == row["predicted"]
        assert mine["top1_probability"] == pytest.approx(float(row["probability"]), abs=1e-4)

    # The module's own forward on the same preprocessing gives the same probabilities.
    model = load_classifier(best)
    stars = sorted((shapes_root / "star").iterdir())[:4]
    with torch.no_grad():
        probs = model(torch.stack([network_input(model, p) for p in stars])).softmax(dim=1)
    for path, expected in zip(stars, probs, strict=True):
        row = predicted[str(path)]
        assert row["top1"] == CLASSES[int(expected.argmax())]
        assert row["top1_probability"] == pytest.approx(float(expected.max()), abs=1e-4)


def test_list_images_rejects_a_missing_input_and_an_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"input=.*nowhere: no such file or folder"):
        list_images(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no image files"):
        list_images(tmp_path / "empty")


def test_network_input_is_the_eval_crop_normalised_by_the_model(shapes_root: Path, trained) -> None:
    run_dir, _ = trained
    model = load_classifier(next(run_dir.glob("checkpoints/best-*.ckpt")))
    path = shapes_root / "circle" / "circle_0000.png"
    shown = preprocessed_image(model, path).permute(1, 2, 0).numpy()
    # The eval preprocessing: shorter side to 32 / 0.875 = 37 px, centre crop 32 px.
    crop = A.Compose([A.SmallestMaxSize(max_size=37, area_for_downscale="image"), A.CenterCrop(32, 32)])
    expected = crop(image=read_rgb(path))["image"]
    assert shown.shape == (32, 32, 3) and shown.dtype == np.uint8
    assert np.array_equal(shown, expected)
    pre = model.hparams.preprocessing
    mean, std = torch.tensor(pre["mean"]).view(3, 1, 1), torch.tensor(pre["std"]).view(3, 1, 1)
    normalised = (torch.from_numpy(expected).permute(2, 0, 1) / 255 - mean) / std
    torch.testing.assert_close(network_input(model, path), normalised)


def test_eval_and_predict_see_the_pixels_the_runs_test_loader_saw(tmp_path: Path) -> None:
    """Photos large enough for the loaders' reduced JPEG decode: the test split through the datamodule and the same
    files through prediction.ImagePaths (eval, predict, the run's predictions.csv) give identical network inputs, so
    eval reproduces a run's test figures however close a prediction is to a tie."""
    import numpy as np
    from PIL import Image

    from transferlab.data.datamodule import FolderDataModule
    from transferlab.inference.image_files import ImagePaths

    NO_AUGMENT = {"random_crop_scale": None, "hflip": 0.0, "rot90": 0.0, "color_jitter": 0.0}
    rng = np.random.default_rng(3)
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(8):
            pixels = rng.integers(0, 256, (int(rng.integers(150, 260)), int(rng.integers(150, 260)), 3), np.uint8)
            Image.fromarray(pixels).save(tmp_path / label / f"{i}.jpg", quality=90)
    datamodule = FolderDataModule(str(tmp_path), image_size=32, num_workers=0, test_fraction=0.5, augment=NO_AUGMENT)
    datamodule.setup("fit")
    test = datamodule.datasets["test"]
    preprocessing = datamodule.preprocessing
    files = ImagePaths([tmp_path / path for path in datamodule.samples.part("test").paths], preprocessing)
    assert len(test) == len(files) == 8
    for index in range(len(test)):
        assert torch.equal(test[index][0], files[index][0]), index
