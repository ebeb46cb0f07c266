"""export: ONNX and TorchScript files whose logits match PyTorch's, and the model.json a server needs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from helpers import command_config, train_once

import transferlab.commands.export
from transferlab.commands.export import export
from transferlab.inference.image_files import network_input
from transferlab.inference.trained_model import load_classifier


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, shapes_root: Path) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.getbasetemp() / "trained_run"
    return run_dir, train_once(run_dir, shapes_root)


def test_onnx_and_torchscript_match_the_checkpoint_on_real_images(trained, shapes_root: Path, tmp_path: Path) -> None:
    _, run_metrics = trained
    cfg = command_config("export", tmp_path, f"ckpt_path={run_metrics['best_ckpt']}", "format=[onnx,torchscript]")
    info = export(cfg)
    assert info["files"] == {"onnx": "model.onnx", "torchscript": "model.torchscript.pt"}
    assert all(diff < 1e-4 for diff in info["max_abs_diff"].values())
    saved = json.loads((tmp_path / "model.json").read_text())
    assert saved["class_names"] == ["circle", "ellipse", "rectangle", "star", "triangle"]
    assert saved["preprocessing"]["image_size"] == 32 and saved["checkpoint"] == run_metrics["best_ckpt"]

    # A server's view: preprocess as model.json says, batch of any size, argmax of the logits.
    model = load_classifier(run_metrics["best_ckpt"])
    images = torch.stack([network_input(model, p) for p in sorted((shapes_root / "star").iterdir())[:5]])
    with torch.no_grad():
        expected = model(images).numpy()
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_logits = session.run(["logits"], {"images": images.numpy()})[0]
    np.testing.assert_allclose(onnx_logits, expected, atol=1e-4)
    scripted = torch.jit.load(str(tmp_path / "model.torchscript.pt"))
    np.testing.assert_allclose(scripted(images).detach().numpy(), expected, atol=1e-4)


def test_export_refuses_an_unknown_format_and_an_unfaithful_file(trained, tmp_path: Path, monkeypatch) -> None:
    _, run_metrics = trained
    ckpt = f"ckpt_path={run_metrics['best_ckpt']}"
    assert command_config("export", tmp_path, ckpt).format == "onnx"  # the default
    with pytest.raises(ValueError, match=r"format=\['tflite'\]: choose onnx or torchscript, or both"):
        export(command_config("export", tmp_path, ckpt, "format=tflite"))
    with pytest.raises(ValueError, match="ckpt_path is required"):
        export(command_config("export", tmp_path))
    # An exporter bug stands in as a file whose logits are off by 0.01.
    faithful = transferlab.commands.export.run_torchscript
    monkeypatch.setattr(
        transferlab.commands.export, "run_torchscript", lambda path, images: faithful(path, images) + 0.01
    )
    with pytest.raises(RuntimeError, match=r"model.torchscript.pt gives logits up to 1.00e-02 away from PyTorch's"):
        export(command_config("export", tmp_path, ckpt, "format=torchscript"))
