"""Any torchvision or timm classifier as a :class:`Backbone`: the network with transferlab's head in place of its
classifier, its ordered stages, its feature width and the preprocessing its weights expect; names, weights, listing.

This module builds the record by name (``build_backbone``, its head, ``outline_backbone`` on the meta device), checks
names, reads what the weights expect and lists them; the record itself is ``record``'s, and everything
downstream reads only the record, never the family. Two adapters say how a family splits: ``torchvision_families``
(a table per family) and ``timm_models`` (timm's own ``group_matcher``); ``weights`` loads pretrained
weights into the record. ``python -m transferlab.backbones --list [pattern]`` lists names, ``--describe <name>`` a
backbone's stages.
"""

from __future__ import annotations

import argparse
import difflib
import fnmatch
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from transferlab.backbones import timm_models as timm_models
from transferlab.backbones import torchvision_families
from transferlab.backbones.head import check_head
from transferlab.backbones.record import Backbone, assign_stages
from transferlab.data.preprocessing import Preprocessing

log = logging.getLogger(__name__)

TIMM_PREFIX = "timm/"


def build_head(in_features: int, num_classes: int, *, hidden_dim: int | None, dropout: float) -> nn.Module:
    """The classifier that replaces the model's: optional hidden layer, optional dropout, then a linear layer."""
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes}: a classifier needs at least 2 classes")
    check_head(hidden_dim=hidden_dim, dropout=dropout)
    layers: list[nn.Module] = []
    if hidden_dim:
        layers += [nn.Linear(in_features, hidden_dim), nn.ReLU(inplace=True)]
        in_features = hidden_dim
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(in_features, num_classes))
    return nn.Sequential(*layers)


def build_backbone(
    name: str,
    num_classes: int,
    *,
    hidden_dim: int | None = None,
    dropout: float = 0.0,
    image_size: int | None = None,
    classifier_hidden: bool = True,
) -> Backbone:
    """A randomly initialised ``name`` with its classifier replaced by a head sized from the model's feature width.

    Weights are loaded separately (:func:`load_backbone_weights`), so a checkpoint rebuilds the architecture
    without downloading anything.

    Args:
        image_size: the input size; only models built for one size use it (timm ViTs get ``img_size``).
        classifier_hidden: keep the hidden layers of a torchvision classifier (VGG, AlexNet, MobileNetV3, MaxViT)
            as the backbone's last stage, ``classifier``; false cuts the network at the pooled conv features
            (Keras' ``include_top=False``, fastai's body). No effect on other families.
    """
    check_backbone_name(name)

    def make_head(in_features: int) -> nn.Module:
        return build_head(in_features, num_classes, hidden_dim=hidden_dim, dropout=dropout)

    if name.startswith(TIMM_PREFIX):
        built = timm_models.build(name.removeprefix(TIMM_PREFIX), make_head, image_size=image_size)
    else:
        built = torchvision_families.build(name, make_head, classifier_hidden=classifier_hidden)
    return backbone_from(name, built)


def outline_backbone(name: str, *, image_size: int | None = None, classifier_hidden: bool = True) -> Backbone:
    """The record of ``name`` built on the meta device: its stages and layers in a fraction of a second, no memory,
    no initialisation (for checking a config before anything slow)."""
    with torch.device("meta"):
        return build_backbone(name, 2, image_size=image_size, classifier_hidden=classifier_hidden)


def backbone_from(name: str, built: Mapping[str, Any]) -> Backbone:
    """The record of an adapter's result: ``net``, ``head``, ``stages`` as (name, [parameter-name prefixes]),
    ``num_features``, and optionally ``no_weight_decay`` and ``build_kwargs``."""
    net, head = built["net"], built["head"]
    build_kwargs = dict(built.get("build_kwargs", {}))
    return Backbone(
        name=name,
        net=net,
        head=head,
        stages=assign_stages(net, head, built["stages"]),
        num_features=int(built["num_features"]),
        preprocessing=backbone_preprocessing(name, image_size=build_kwargs.get("img_size")),
        no_weight_decay=frozenset(built.get("no_weight_decay", ())),
        build_kwargs=build_kwargs,
    )


# ---------------------------------------------------------------------------------------------------------------
# Names


def available_backbones(pattern: str | None = None, *, include_timm: bool = True) -> list[str]:
    """torchvision classification models by name, then timm models as ``timm/<name>``; ``pattern`` is a glob."""
    names = torchvision_families.names()
    if include_timm:
        names += [TIMM_PREFIX + n for n in timm_models.names()]
    return [
        n for n in names if pattern is None or fnmatch.fnmatch(n, pattern) or fnmatch.fnmatch(n, TIMM_PREFIX + pattern)
    ]


def check_backbone_name(name: str) -> None:
    if not isinstance(name, str):
        raise ValueError(f"model.backbone={name!r} must be a model name, e.g. resnet50 or timm/convnext_tiny")
    if name.startswith(TIMM_PREFIX):
        if timm_models.is_model(name.removeprefix(TIMM_PREFIX)):
            return
    elif name in torchvision_families.names():
        return
    candidates = available_backbones() + [TIMM_PREFIX + n for n in timm_models.pretrained_tags()]
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.6)
    if not name.startswith(TIMM_PREFIX) and timm_models.is_model(name):
        close.insert(0, TIMM_PREFIX + name)
    hint = f" Did you mean: {', '.join(dict.fromkeys(close))}?" if close else ""
    raise ValueError(
        f"model.backbone={name!r} is not a known backbone.{hint} List them with "
        "`python -m transferlab.backbones --list [pattern]` (torchvision names, and timm models as timm/<name>)."
    )


# ---------------------------------------------------------------------------------------------------------------
# Preprocessing


def backbone_preprocessing(
    name: str, *, image_size: int | None = None, resize_ratio: float | None = None
) -> Preprocessing:
    """What the weights of ``name`` expect: ``image_size``, ``mean``, ``std``, ``resize_ratio`` (crop fraction of
    the eval resize), ``interpolation``; read offline from torchvision's weight enum or timm's pretrained config,
    also for random init or a weights file (a file is most likely a derivative of the default weights).
    ``image_size`` and ``resize_ratio`` override the weights' own where given (``data.image_size``)."""
    check_backbone_name(name)
    if name.startswith(TIMM_PREFIX):
        own = timm_models.preprocessing(name.removeprefix(TIMM_PREFIX))
    else:
        own = torchvision_families.preprocessing(name)
    if image_size is not None:
        check_image_size(name, image_size)
        own = replace(own, image_size=int(image_size))
    if resize_ratio is not None:
        own = replace(own, resize_ratio=float(resize_ratio))
    return own


def preprocessing_for(name: str, data: Mapping[str, Any]) -> Preprocessing:
    """The preprocessing of a run: the weights' own, with ``data.image_size`` and ``data.resize_ratio`` where they
    are set (null: the weights' own)."""
    return backbone_preprocessing(name, image_size=data.get("image_size"), resize_ratio=data.get("resize_ratio"))


def check_image_size(name: str, image_size: int) -> None:
    """Refuse, before training, an input size the model cannot take (torchvision ViT's fixed patch grid)."""
    if name.startswith(TIMM_PREFIX):
        allowed = timm_models.allowed_sizes(name.removeprefix(TIMM_PREFIX))
    else:
        allowed = torchvision_families.allowed_sizes(name)
    fixed, minimum = allowed
    if fixed is not None and image_size != fixed:
        raise ValueError(
            f"data.image_size={image_size}: {name} takes {fixed} px inputs only (its patch grid and position "
            f"embedding are fixed); set data.image_size={fixed} or null (the weights' own size)"
            + ("" if name.startswith(TIMM_PREFIX) else ", or use a timm ViT (timm/vit_*), which resamples them")
        )
    if minimum is not None and image_size < minimum:
        raise ValueError(f"data.image_size={image_size}: {name} needs inputs of at least {minimum} px")


# ---------------------------------------------------------------------------------------------------------------
# Compatibility and listing


def build_network(backbone: str, num_classes: int, *, hidden_dim: int | None = None, dropout: float = 0.0) -> nn.Module:
    """The network alone of :func:`build_backbone` (for callers that need no stages)."""
    return build_backbone(backbone, num_classes, hidden_dim=hidden_dim, dropout=dropout).net


def describe(name: str, *, image_size: int | None = None) -> str:
    """One backbone's stages, feature width and preprocessing, as ``--describe`` prints them."""
    backbone = outline_backbone(name, image_size=image_size)
    lines = [
        f"{name}: {sum(p.numel() for p in backbone.net.parameters()):,} parameters, "
        f"{backbone.num_features} features, {len(backbone.layers())} parameterised layers"
    ]
    for stage in backbone.stages_with_head():
        lines.append(f"  {stage.name:<16} {sum(p.numel() for p in stage.parameters()):>12,} parameters")
    lines.append(f"  preprocessing: {backbone.preprocessing.to_dict()}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, print_: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(prog="python -m transferlab.backbones", description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", nargs="?", const="*", metavar="PATTERN", help="list names matching a glob")
    parser.add_argument("--tags", action="store_true", help="with --list: timm's pretrained tags too")
    parser.add_argument("--describe", metavar="NAME", help="print a backbone's stages and preprocessing")
    args = parser.parse_args(argv)
    if args.describe:
        print_(describe(args.describe))
    if args.list is not None or not args.describe:
        pattern = args.list or "*"
        for name in available_backbones(pattern):
            print_(name)
        if args.tags:
            for tag in timm_models.pretrained_tags(pattern.removeprefix(TIMM_PREFIX)):
                print_(TIMM_PREFIX + tag)
