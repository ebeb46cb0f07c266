"""Where a backbone's pretrained weights come from: torchvision's DEFAULT weights or timm's pretrained tag (downloaded
once into their caches, with an offline error that names the file and the folder), or a weights file of that
architecture (a plain ``state_dict`` or a transferlab checkpoint). The head is never loaded: it stays new.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from transferlab.backbones import timm_models as timm_models
from transferlab.backbones import torchvision_families
from transferlab.backbones.builder import TIMM_PREFIX
from transferlab.backbones.record import Backbone

log = logging.getLogger(__name__)


def load_backbone_weights(backbone: Backbone, weights: str | None) -> None:
    """Load pretrained weights into every stage but the head, which stays newly initialised.

    Args:
        backbone: a record from :func:`build_backbone`.
        weights: ``"imagenet"`` (torchvision's DEFAULT weights, or timm's pretrained tag from the Hugging Face
            hub; downloaded once into the cache), ``None`` (keep the random initialisation), or the path of a
            weights file of that architecture: a plain ``state_dict`` (``.pth``/``.pt``/``.safetensors``) or a
            transferlab checkpoint, whose backbone is reused and head dropped.
    """
    if weights is None:
        return
    name = backbone.name
    if weights == "imagenet":
        state = download_imagenet_state_dict(name, **backbone.build_kwargs)
        source = f"the ImageNet weights of {name}"
    else:
        state = read_state_dict_file(weights)
        source = str(weights)
    head = backbone.head_prefix()
    expected = {k for k in backbone.net.state_dict() if not k.startswith(head)}
    backbone_state = {k: v for k, v in state.items() if k in expected}
    missing = sorted(expected - backbone_state.keys())
    if missing:
        raise ValueError(
            f"model.weights={source} does not fit backbone {name!r}: {len(missing)} of its tensors are "
            f"missing (first: {missing[:3]}). Pick the model.backbone that the weights were trained with."
        )
    try:
        backbone.net.load_state_dict(backbone_state, strict=False)
    except RuntimeError as error:  # shape mismatches, e.g. resnet18 weights into resnet34
        raise ValueError(f"model.weights={source} does not fit backbone {name!r}: {error}") from None
    log.info("Loaded backbone weights from %s", source)


def download_imagenet_state_dict(name: str, **build_kwargs: Any) -> Mapping[str, Tensor]:
    """The default pretrained weights of ``name``, downloaded on first use, with an offline-friendly error that
    names the file and the cache folder to put it in."""
    if name.startswith(TIMM_PREFIX):
        return timm_models.pretrained_state_dict(name.removeprefix(TIMM_PREFIX), **build_kwargs)
    return torchvision_families.pretrained_state_dict(name)


def read_state_dict_file(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read a ``state_dict`` (``torch.save`` or safetensors) or a transferlab checkpoint's network.

    torch files are loaded with ``weights_only=True``: tensors and plain containers only, never code.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"model.weights={path}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle errors come in many types; all mean "not a weights file we trust"
        raise ValueError(
            f"model.weights={path} could not be loaded as a weights file with weights_only=True ({error})"
        ) from None
    if isinstance(state, Mapping) and "state_dict" in state:  # a Lightning checkpoint of ImageClassifier
        state = {k.removeprefix("net."): v for k, v in state["state_dict"].items() if k.startswith("net.")}
    if isinstance(state, Mapping) and "model" in state and isinstance(state["model"], Mapping):
        state = state["model"]  # the {"model": state_dict, ...} of timm's and torchvision's training scripts
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"model.weights={path} holds no state_dict of tensors")
    return dict(state)
