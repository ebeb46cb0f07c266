"""Predictor: in-memory images classified exactly as predict.py classifies files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import train_once
from PIL import Image

from transferlab import ImagePrediction, Predictor
from transferlab.inference.image_files import predict_files
from transferlab.inference.trained_model import load_classifier
from transferlab.training.classifier import ImageClassifier


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, shapes_root: Path) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.getbasetemp() / "trained_run"
    return run_dir, train_once(run_dir, shapes_root)


@pytest.fixture
def image_files(shapes_root: Path, tmp_path: Path) -> list[Path]:
    """Two demo images, and a third as RGBA (alpha composited), grayscale and an EXIF-rotated JPEG."""
    paths = [shapes_root / "circle" / "circle_0000.png", shapes_root / "star" / "star_0001.png"]
    rgb = np.asarray(Image.open(shapes_root / "triangle" / "triangle_0002.png").convert("RGB"))
    rgba = np.dstack([rgb, np.linspace(0, 255, rgb.shape[1], dtype=np.uint8)[None, :].repeat(rgb.shape[0], 0)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgb).convert("L").save(tmp_path / "gray.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: read_rgb turns it upright
    Image.fromarray(np.ascontiguousarray(rgb[:, :-8])).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    return [*paths, tmp_path / "rgba.png", tmp_path / "gray.png", tmp_path / "rotated.jpg"]


def test_paths_pil_images_and_arrays_match_predict_files(trained, image_files: list[Path]) -> None:
    _, run_metrics = trained
    model = load_classifier(run_metrics["best_ckpt"])
    expected = predict_files(model, image_files, device="cpu").probs  # predict.py's and eval.py's code path
    predictor = Predictor.from_checkpoint(run_metrics["best_ckpt"], device="cpu", batch_size=2)

    pil = [Image.open(path) for path in image_files]  # mode RGB, RGB, RGBA, L, and the EXIF-tagged JPEG
    assert [image.mode for image in pil[2:4]] == ["RGBA", "L"]
    arrays = [np.asarray(image) for image in pil[:4]]  # HxWx3, HxWx4, HxW; arrays carry no EXIF tag
    torch.testing.assert_close(predictor.probs([str(p) for p in image_files]), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(predictor.probs(pil), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(predictor.probs(arrays), expected[:4], atol=1e-6, rtol=0)
    assert pil[4].getexif()[0x0112] == 6  # the caller's image is left as it was

    predictions = predictor.predict(pil, top_k=2)
    assert all(isinstance(p, ImagePrediction) for p in predictions) and len(predictions) == len(image_files)
    for prediction, row in zip(predictions, expected, strict=True):
        np.testing.assert_allclose(prediction.probs, row.numpy(), atol=1e-6)
        top = row.argsort(descending=True)[:2].tolist()
        assert [name for name, _ in prediction.top_k] == [model.class_names[i] for i in top]
        assert prediction.label == model.class_names[top[0]]
        assert prediction.probability == pytest.approx(float(row[top[0]]), abs=1e-6)
    single = predictor.predict(pil[0], top_k=99)  # one image, not a list; k capped at the number of classes
    assert len(single) == 1 and len(single[0].top_k) == len(model.class_names)
    assert predictor.predict([]) == []


def test_predictor_of_a_loaded_model(trained, image_files: list[Path]) -> None:
    """Predictor(model) on a model in train mode predicts as from_checkpoint does and leaves it in train mode; the
    removed ImageClassifier.predict_images says what replaces it."""
    _, run_metrics = trained
    model = ImageClassifier.load_from_checkpoint(run_metrics["best_ckpt"], map_location="cpu")
    model.train()
    expected = Predictor.from_checkpoint(run_metrics["best_ckpt"], device="cpu").predict(image_files[:2], top_k=3)
    predictions = Predictor(model).predict([Image.open(image_files[0]), image_files[1]], top_k=3)
    assert model.training  # eval mode only while predicting
    with pytest.raises(AttributeError, match=r"transferlab.Predictor\(model\)"):
        model.predict_images(image_files[:1])
    for mine, theirs in zip(predictions, expected, strict=True):
        assert [name for name, _ in mine.top_k] == [name for name, _ in theirs.top_k]
        np.testing.assert_allclose(mine.probs, theirs.probs, atol=1e-6)


def test_bad_inputs_name_their_index(trained, image_files: list[Path], tmp_path: Path) -> None:
    _, run_metrics = trained
    predictor = Predictor.from_checkpoint(run_metrics["best_ckpt"], device="cpu")
    good = image_files[0]
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:200])  # opens lazily; the pixels are missing
    cases = [
        (np.zeros((8, 8, 3), np.float32), r"images\[1\]: a float32 array of shape \(8, 8, 3\); pass PIL images"),
        (np.zeros((8, 8, 2), np.uint8), r"images\[1\]: a uint8 array of shape \(8, 8, 2\)"),
        (np.zeros((0, 8), np.uint8), r"images\[1\]: a uint8 array of shape \(0, 8\)"),
        (tmp_path / "missing.png", r"images\[1\]: no such file .*missing\.png; pass PIL images"),
        (tmp_path / "broken.jpg", r"images\[1\]: cannot read image .*broken\.jpg"),
        (Image.open(tmp_path / "cut.png"), r"images\[1\]: cannot read the RGB PIL image"),
        (42, r"images\[1\]: int is not an image; pass PIL images, uint8 numpy arrays"),
    ]
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            predictor.predict([good, bad])
    with pytest.raises(ValueError, match=r"top_k=0 must be >= 1"):
        predictor.predict([good], top_k=0)


def test_import_transferlab_stays_cheap() -> None:
    code = "import sys, transferlab; assert 'torch' not in sys.modules, 'import transferlab imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_predict_files_takes_num_workers_auto(trained, image_files: list[Path]) -> None:
    # eval.py and predict.py num_workers=auto: the loaders' own rule, as for training.
    model = load_classifier(trained[1]["best_ckpt"])
    auto = predict_files(model, image_files, num_workers="auto")
    plain = predict_files(model, image_files, num_workers=0)
    assert torch.allclose(auto.probs, plain.probs) and auto.paths == plain.paths
    with pytest.raises(ValueError, match="num_workers='two' must be a non-negative integer or auto"):
        predict_files(model, image_files, num_workers="two")
