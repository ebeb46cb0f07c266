"""torchvision ResNet-family backbones: building by name, loading weights, the new head, and the stage list.

A network here is a torchvision ResNet whose ``fc`` has been replaced by a transferlab head. Its parameters are
split into *stages* (``stem``, ``layer1`` … ``layer4``, ``head``), the unit that freezing, unfreezing and
learning-rate groups work on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import torch
import torchvision.models
from torch import nn
from torchvision.models import get_model, get_model_weights, list_models

log = logging.getLogger(__name__)

BACKBONE_STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")
STAGES = (*BACKBONE_STAGES, "head")

# Used when the weights carry no preprocessing of their own (random init, a weights file): every torchvision
# ResNet weight set was trained with these, and a file is most likely a derivative of one.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def available_backbones() -> list[str]:
    """The torchvision ResNet-family model names this package can build."""
    return sorted(
        name for name in list_models(module=torchvision.models) if name.startswith(("resnet", "resnext", "wide_resnet"))
    )


def check_backbone_name(name: str) -> None:
    choices = available_backbones()
    if name not in choices:
        raise ValueError(f"model.backbone={name!r} is not a known backbone; choose one of: {', '.join(choices)}")


def build_head(in_features: int, num_classes: int, *, hidden_dim: int | None, dropout: float) -> nn.Module:
    """The classifier that replaces ResNet's ``fc``: optional hidden layer, optional dropout, then a linear layer."""
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes}: a classifier needs at least 2 classes")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"model.head.dropout={dropout} must be in [0, 1)")
    layers: list[nn.Module] = []
    if hidden_dim:
        layers += [nn.Linear(in_features, hidden_dim), nn.ReLU(inplace=True)]
        in_features = hidden_dim
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(in_features, num_classes))
    return nn.Sequential(*layers)


def build_network(backbone: str, num_classes: int, *, hidden_dim: int | None = None, dropout: float = 0.0) -> nn.Module:
    """A randomly initialised ResNet with its 1000-class ``fc`` replaced by a new head sized from ``fc.in_features``.

    Weights are loaded separately (:func:`load_backbone_weights`), so a checkpoint can rebuild the architecture
    without downloading anything.
    """
    check_backbone_name(backbone)
    net = get_model(backbone, weights=None)
    net.fc = build_head(net.fc.in_features, num_classes, hidden_dim=hidden_dim, dropout=dropout)
    return net


def pooled_features(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """What the head of a network from :func:`build_network` sees: the backbone's globally pooled features.

    torchvision's ResNet forward without ``fc``, so the network needs no surgery (and a compiled one no recompile).
    """
    x = net.maxpool(net.relu(net.bn1(net.conv1(images))))
    x = net.layer4(net.layer3(net.layer2(net.layer1(x))))
    return torch.flatten(net.avgpool(x), 1)


def stage_modules(net: nn.Module) -> dict[str, list[nn.Module]]:
    """The modules of each stage, in input-to-output order."""
    return {
        "stem": [net.conv1, net.bn1],
        "layer1": [net.layer1],
        "layer2": [net.layer2],
        "layer3": [net.layer3],
        "layer4": [net.layer4],
        "head": [net.fc],
    }


def normalization(backbone: str, weights: str | None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std for inputs, taken from the torchvision weights where ImageNet weights are used."""
    if weights == "imagenet":
        transforms = get_model_weights(backbone).DEFAULT.transforms()
        return tuple(transforms.mean), tuple(transforms.std)
    return IMAGENET_MEAN, IMAGENET_STD


def load_backbone_weights(net: nn.Module, backbone: str, weights: str | None) -> None:
    """Load pretrained weights into every stage but the head, which stays newly initialised.

    Args:
        net: a network from :func:`build_network`.
        backbone: its torchvision name (for ImageNet weights and error messages).
        weights: ``"imagenet"`` (torchvision's default weights, downloaded once into ``$TORCH_HOME``), ``None``
            (keep the random initialisation), or the path of a ``state_dict`` file (a plain torchvision
            ``state_dict``, or a transferlab checkpoint whose backbone is reused and head dropped).
    """
    if weights is None:
        return
    if weights == "imagenet":
        state = download_imagenet_state_dict(backbone)
        source = f"torchvision's ImageNet weights for {backbone}"
    else:
        state = read_state_dict_file(weights)
        source = str(weights)
    backbone_state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    expected = {k for k in net.state_dict() if not k.startswith("fc.")}
    missing = sorted(expected - backbone_state.keys())
    if missing:
        raise ValueError(
            f"model.weights={source} does not fit backbone {backbone!r}: {len(missing)} of its parameters are "
            f"missing (first: {missing[:3]}). Pick the model= that the weights were trained with."
        )
    try:
        net.load_state_dict(backbone_state, strict=False)
    except RuntimeError as error:  # shape mismatches, e.g. resnet18 weights into resnet34
        raise ValueError(f"model.weights={source} does not fit backbone {backbone!r}: {error}") from None
    log.info("Loaded backbone weights from %s", source)


def download_imagenet_state_dict(backbone: str) -> Mapping[str, torch.Tensor]:
    """torchvision's default ImageNet weights, downloaded on first use, with an offline-friendly error."""
    weights = get_model_weights(backbone).DEFAULT
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except (OSError, RuntimeError) as error:  # URLError is an OSError; a truncated download a RuntimeError
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        raise RuntimeError(
            f"Could not download ImageNet weights for {backbone} from {weights.url} ({error}).\n"
            f"Offline? Put the file {Path(weights.url).name} into {cache} "
            f"(that is $TORCH_HOME/hub/checkpoints; TORCH_HOME={os.environ.get('TORCH_HOME', '~/.cache/torch')}),"
            " or pass model.weights=/path/to/weights.pth, or train without pretrained weights with "
            "strategy=scratch."
        ) from error


def read_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a torchvision ``state_dict`` or a transferlab checkpoint as a plain ResNet ``state_dict``.

    Files are loaded with ``weights_only=True``: tensors and plain containers only, never code.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"model.weights={path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle errors come in many types; all mean "not a weights file we trust"
        raise ValueError(
            f"model.weights={path} could not be loaded as a weights file with weights_only=True ({error})"
        ) from None
    if isinstance(state, Mapping) and "state_dict" in state:  # a Lightning checkpoint of ImageClassifier
        state = {k.removeprefix("net."): v for k, v in state["state_dict"].items() if k.startswith("net.")}
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"model.weights={path} holds no state_dict of tensors")
    return dict(state)
