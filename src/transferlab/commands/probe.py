"""The linear-probe command (``probe.py``), the baseline: features of the frozen pretrained backbone, extracted
once with the eval preprocessing (no augmentation), and a multinomial logistic regression fitted on them by L-BFGS,
its L2 strength picked on the validation split.

It is the cheapest honest answer to "how good are these pretrained features here?": a ``feature_extraction`` run
that beats it by little was not worth its epochs. It writes the same ``metrics.json`` keys as a training run
(``rundir.RunMetrics``), so ``summary.csv`` and the strategy report list it beside them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning import seed_everything
from torch import nn

from transferlab.backbones.builder import build_backbone, check_backbone_name, preprocessing_for
from transferlab.backbones.record import Backbone
from transferlab.backbones.weights import load_backbone_weights
from transferlab.data.augment import Augment
from transferlab.data.datamodule import FolderDataModule
from transferlab.data.preprocessing import Preprocessing
from transferlab.data.splits import write_splits_csv
from transferlab.data.transforms import normalize_images
from transferlab.devices import resolve_device
from transferlab.inference.image_files import readable_batches
from transferlab.inference.metrics import compute_metrics
from transferlab.runs.layout import METRICS_FILE, SPLITS_FILE, RunMetrics, write_metrics

log = logging.getLogger(__name__)

STRATEGY = "linear_probe"


def linear_probe(cfg: DictConfig) -> dict[str, Any]:
    """Extract features, fit one probe per ``cfg.probe.weight_decays``, keep the best on val, test it."""
    check_probe_config(cfg)
    output_dir = Path(cfg.paths.output_dir)
    seed_everything(cfg.seed)
    weights = preprocessing_for(cfg.model.backbone, cfg.data)
    # Only the split, the classes and the eval preprocessing are used: its (unused) train loader gets no augmentation.
    datamodule: FolderDataModule = instantiate(
        cfg.data, augment=Augment().to_dict(), preprocessing=weights.to_dict(), _convert_="all"
    )
    datamodule.setup("fit")
    write_splits_csv(output_dir / SPLITS_FILE, datamodule.samples)
    names = datamodule.class_names

    started = time.perf_counter()
    features, labels = split_features(cfg, datamodule, datamodule.preprocessing)
    # Standardised features make one L2 grid fit every backbone (feature scales differ by orders of magnitude).
    shift, scale = features["train"].mean(0), features["train"].std(0).clamp_min(1e-6)
    x = {split: (f - shift) / scale for split, f in features.items()}
    fits = []
    for weight_decay in cfg.probe.weight_decays:
        probe = fit_logistic_regression(x["train"], labels["train"], len(names), weight_decay, cfg.probe.max_iter)
        val_acc = accuracy(probe, x["val"], labels["val"])
        log.info("Linear probe, weight decay %g: val accuracy %.4f", weight_decay, val_acc)
        fits.append((val_acc, weight_decay, probe))
    # max over (val accuracy, weight decay): ties go to the stronger regularisation.
    best_val_acc, weight_decay, probe = max(fits, key=lambda fit: fit[:2])
    fit_seconds = time.perf_counter() - started

    with torch.no_grad():
        test_probs = probe(x["test"]).softmax(dim=1)
    test = compute_metrics(test_probs, labels["test"], names)
    metrics: RunMetrics = {
        "strategy": STRATEGY,
        "best_val_acc": best_val_acc,
        "weight_decay": weight_decay,
        "epochs": None,
        "fit_seconds": round(fit_seconds, 3),
        "trainable_params": sum(p.numel() for p in probe.parameters()),
        "test_acc": test["acc"],
        "test_f1": test["f1"],
        "test_per_class_acc": {name: row["recall"] for name, row in test["per_class"].items()},
        "test_confusion_matrix": test["confusion_matrix"],
        "class_names": names,
    }
    write_metrics(output_dir, metrics)
    log.info(
        "Linear probe on %s features: test accuracy %.4f, val accuracy %.4f (weight decay %g); wrote %s",
        *(cfg.model.backbone, metrics["test_acc"], best_val_acc, weight_decay, output_dir / METRICS_FILE),
    )
    return metrics


def split_features(
    cfg: DictConfig, datamodule: FolderDataModule, preprocessing: Preprocessing
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The pretrained backbone's pooled features and the labels of the readable images of each split."""
    backbone = build_backbone(
        cfg.model.backbone,
        datamodule.num_classes,
        image_size=datamodule.image_size,
        classifier_hidden=cfg.model.get("classifier_hidden", True),
    )
    load_backbone_weights(backbone, cfg.model.weights)
    features, labels = {}, {}
    for split in ("train", "val", "test"):
        samples = datamodule.samples.part(split)
        if not len(samples):
            raise ValueError(f"the {split} split of {datamodule.root} is empty: set data.{split}_fraction > 0")
        paths = [datamodule.root / path for path in samples.paths]
        # The datamodule's num_workers, not cfg.data's: it has resolved "auto" to a count.
        features[split], kept = extract_features(
            backbone, paths, preprocessing, cfg.data.batch_size, cfg.device, datamodule.num_workers
        )
        labels[split] = torch.as_tensor(samples.labels[kept], dtype=torch.long)
    return features, labels


def check_probe_config(cfg: DictConfig) -> None:
    check_backbone_name(cfg.model.backbone)
    if cfg.model.weights is None:
        raise ValueError(
            "model.weights=null: a linear probe of random features measures nothing; use imagenet or a file"
        )
    if cfg.model.head.hidden_dim or cfg.model.head.dropout:
        raise ValueError(
            "the linear probe is one linear layer: leave model.head.hidden_dim and model.head.dropout unset"
        )
    if cfg.data.balanced_sampler:
        raise ValueError("data.balanced_sampler does not apply: the probe fits on every training feature at once")
    decays = list(cfg.probe.weight_decays)
    if not decays or any(not isinstance(d, int | float) or d < 0 for d in decays):
        raise ValueError(f"probe.weight_decays={decays} must be a non-empty list of numbers >= 0")
    if not isinstance(cfg.probe.max_iter, int) or cfg.probe.max_iter < 1:
        raise ValueError(f"probe.max_iter={cfg.probe.max_iter!r} must be a positive integer")


@torch.inference_mode()
def extract_features(
    backbone: Backbone,
    paths: Sequence[Path],
    preprocessing: Preprocessing,
    batch_size: int,
    device: str,
    num_workers: int = 0,
) -> tuple[torch.Tensor, list[int]]:
    """The pooled features (what the head would see) of the readable images (CPU, float32), and their indices."""
    target = resolve_device(device)
    backbone.net.to(target).eval()
    outputs, kept = [], []
    batches = readable_batches(paths, preprocessing, batch_size=batch_size, num_workers=num_workers, device=target)
    for images, indices in batches:
        batch = normalize_images(images, preprocessing.mean, preprocessing.std)
        outputs.append(backbone.pooled_features(batch).float().cpu())
        kept.extend(indices)
    if not outputs:
        raise ValueError(f"none of {len(paths)} images could be read, e.g. {paths[0]}")
    return torch.cat(outputs), kept


def fit_logistic_regression(
    x: torch.Tensor, y: torch.Tensor, num_classes: int, weight_decay: float, max_iter: int
) -> nn.Linear:
    """Multinomial logistic regression: mean cross-entropy + ``weight_decay / 2 · ‖W‖²``, full batch, L-BFGS."""
    linear = nn.Linear(x.shape[1], num_classes)
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    optimizer = torch.optim.LBFGS(linear.parameters(), lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(linear(x), y) + weight_decay / 2 * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return linear.requires_grad_(False)


def accuracy(linear: nn.Linear, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (linear(x).argmax(dim=1) == y).float().mean().item()
