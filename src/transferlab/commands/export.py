"""The export command (``export.py``): a trained model for serving without transferlab, as ONNX and TorchScript,
each checked against the checkpoint's own outputs (ONNX with onnxruntime), plus ``model.json`` with what a server
must know (class names in output order, preprocessing, input and output names).

The exported network maps a float32 batch ``images`` (N×3×S×S, normalised with the mean and std in model.json) to
``logits`` (N×classes); softmax gives probabilities. The batch size is dynamic.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import torch
from omegaconf import DictConfig
from torch import nn

from transferlab.files import atomic_write_json
from transferlab.inference.image_files import model_preprocessing
from transferlab.inference.trained_model import checkpoint_file, load_classifier
from transferlab.runs.layout import EXPORT_FILES, EXPORT_INFO_FILE

log = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript")
INPUT_NAME = "images"
OUTPUT_NAME = "logits"


def export(cfg: DictConfig) -> dict[str, Any]:
    """Export the checkpoint ``cfg.ckpt_path`` as ``cfg.format`` into ``cfg.paths.output_dir``; check each file.

    ``cfg.format`` is ``onnx``, ``torchscript`` or a list of both. Returns what ``model.json`` holds: the files, the
    largest absolute difference of each from PyTorch's logits, and the class names and preprocessing.
    """
    formats = [cfg.format] if isinstance(cfg.format, str) else list(cfg.format)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise ValueError(f"format={formats}: choose {' or '.join(FORMATS)}, or both as format=[{','.join(FORMATS)}]")
    ckpt_path = checkpoint_file(cfg.ckpt_path)
    model = load_classifier(ckpt_path)
    net = model.net.eval()
    preprocessing = model_preprocessing(model)
    size = preprocessing.image_size
    generator = torch.Generator().manual_seed(0)
    # Traced with one batch size, checked with another: that is what proves the batch dimension is dynamic.
    example = torch.randn(2, 3, size, size, generator=generator)
    check = torch.randn(3, 3, size, size, generator=generator)
    with torch.inference_mode():
        expected = net(check).numpy()

    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = {
        "checkpoint": str(ckpt_path),
        "backbone": model.hparams.backbone,
        "class_names": list(model.class_names),
        "preprocessing": preprocessing.to_dict(),
        "input": {"name": INPUT_NAME, "shape": ["batch", 3, size, size], "dtype": "float32"},
        "output": {"name": OUTPUT_NAME, "shape": ["batch", len(model.class_names)], "meaning": "logits"},
        "files": {},
        "max_abs_diff": {},
    }
    for fmt in formats:
        path = output_dir / EXPORT_FILES[fmt]
        if fmt == "onnx":
            export_onnx(net, example, path, opset=cfg.opset)
            outputs = run_onnx(path, check)
        else:
            export_torchscript(net, example, path)
            outputs = run_torchscript(path, check)
        diff = float(np.abs(outputs - expected).max())
        if diff > cfg.atol:
            raise RuntimeError(
                f"{path} gives logits up to {diff:.2e} away from PyTorch's (atol={cfg.atol}): the export is not "
                "faithful; raise atol= only if this difference is acceptable for your use"
            )
        info["files"][fmt] = path.name
        info["max_abs_diff"][fmt] = diff
        log.info("Exported %s (max |Δlogit| %.1e against PyTorch)", path, diff)
    atomic_write_json(output_dir / EXPORT_INFO_FILE, info)
    return info


def export_onnx(net: nn.Module, example: torch.Tensor, path: Path, *, opset: int | None) -> None:
    """torch.export-based ONNX export, one self-contained file, batch dimension dynamic, at `opset` (None: the
    exporter's default).

    The exporter writes its own opset and converts down only where it can; for an opset it cannot reach it logs
    a warning and keeps its own, so the file's opset is checked: an opset asked for and not written is an error.
    """
    if opset is not None and (isinstance(opset, bool) or not isinstance(opset, int) or opset < 1):
        raise ValueError(f"opset={opset!r} must be a positive integer (an ONNX opset version), or null")
    # The exporter's optimiser (onnxscript) logs each of its passes at INFO, which the job's INFO logging would print.
    logging.getLogger("onnxscript").setLevel(logging.WARNING)
    torch.onnx.export(
        net,
        (example,),
        path,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        opset_version=opset,
        external_data=False,
        dynamo=True,
        verbose=False,
    )
    written = next(i.version for i in onnx.load(str(path), load_external_data=False).opset_import if i.domain == "")
    if opset is not None and written != opset:
        path.unlink(missing_ok=True)
        raise ValueError(
            f"opset={opset}: torch.onnx could not convert this model to opset {opset} and wrote opset {written}; "
            f"pass opset={written} or later (or leave opset=null for {written})"
        )


def run_onnx(path: Path, images: torch.Tensor) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run([OUTPUT_NAME], {INPUT_NAME: images.numpy()})[0]


def export_torchscript(net: nn.Module, example: torch.Tensor, path: Path) -> None:
    # Tracing: a ResNet has no data-dependent control flow, so the trace is the whole network.
    with torch.no_grad():
        torch.jit.trace(net, example).save(str(path))


def run_torchscript(path: Path, images: torch.Tensor) -> np.ndarray:
    loaded = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return loaded(images).numpy()
