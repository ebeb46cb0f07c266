"""The frozen backbone's pooled features of a loader's images, for the feature cache (``data.cache_features=true``,
see ``data/feature_cache.py``): the train command hands the datamodule :func:`feature_extractor`, and the datamodule
calls it at the first request of each split's loader, when the Trainer has put the model on its device and, on a
resume, restored its weights.
"""

from __future__ import annotations

import torch
from pytorch_lightning import Trainer
from torch import Tensor
from torch.utils.data import DataLoader

from transferlab.data.feature_cache import FeatureExtractor
from transferlab.training.classifier import ImageClassifier


def feature_extractor(model: ImageClassifier, trainer: Trainer) -> FeatureExtractor:
    """What the datamodule calls to turn a loader of images into features: ``model``'s backbone, on ``trainer``'s
    device and under its precision."""
    return lambda loader: extract_features(model, loader, trainer)


@torch.no_grad()
def extract_features(model: ImageClassifier, loader: DataLoader, trainer: Trainer) -> tuple[Tensor, Tensor]:
    """The pooled backbone features and labels of every image of ``loader``, in its order, on the Trainer's device.

    Uses the network in eval mode, restoring each module's mode afterwards (frozen BatchNorm stays frozen).
    Not ``inference_mode``: its tensors could not be saved for the head's backward pass.
    """
    device = trainer.strategy.root_device
    net = model.net
    modes = {module: module.training for module in net.modules()}
    net.eval()
    features, labels = [], []
    try:
        for images, targets in loader:
            images = model.normalize(images.to(device, non_blocking=True))
            if next(net.parameters()).is_contiguous(memory_format=torch.channels_last):
                images = images.contiguous(memory_format=torch.channels_last)
            with trainer.precision_plugin.forward_context():  # autocast to bf16/fp16 under mixed precision
                features.append(model.backbone.pooled_features(images).float())
            labels.append(targets.to(device))
    finally:
        for module, training in modes.items():
            module.training = training
    if not features:
        raise ValueError("no readable image in this split: nothing to extract features from")
    return torch.cat(features), torch.cat(labels)
