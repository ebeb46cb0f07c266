"""Any torchvision or timm classifier as a :class:`Backbone`: the network with transferlab's head in place of its
classifier, its ordered stages, its feature width and the preprocessing its weights expect; names, weights, listing.

Everything downstream (freezing, parameter groups, feature caching, the linear probe, export) reads only the record,
never the family. Two adapters say how a family splits: ``torchvision_backbones`` (a table per family) and
``timm_backbones`` (timm's own ``group_matcher``); ``backbone_weights`` loads pretrained weights into the record.
``python -m transferlab.backbones --list [pattern]`` lists names, ``--describe <name>`` a backbone's stages.
"""

from __future__ import annotations

import argparse
import difflib
import fnmatch
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from transferlab import timm_backbones, torchvision_backbones
from transferlab.checks import integer, number

log = logging.getLogger(__name__)

TIMM_PREFIX = "timm/"


@dataclass(frozen=True, eq=False)
class Stage:
    """One stage: whole submodules (with their norm, dropout and activation layers) plus loose parameters that a
    module shared with other stages owns directly (ViT's class token and position embedding)."""

    name: str
    modules: tuple[nn.Module, ...]
    params: tuple[nn.Parameter, ...] = ()

    def parameters(self) -> Iterator[nn.Parameter]:
        for module in self.modules:
            yield from module.parameters()
        yield from self.params

    def tensors(self) -> dict[str, Tensor]:
        """Every parameter and buffer of the stage by a stable key (for snapshots and tests)."""
        state = {f"{i}.{k}": v for i, m in enumerate(self.modules) for k, v in m.state_dict(keep_vars=True).items()}
        state.update({f"param{i}": p for i, p in enumerate(self.params)})
        return state


@dataclass(eq=False)
class Backbone:
    """A network whose classifier is transferlab's head, and what it says about itself.

    Attributes:
        name: as in ``model.backbone``: a torchvision name (``vgg16``) or ``timm/<name>``.
        net: the whole network (head included): images in, logits out. Its state_dict keys are the source
            model's, the head's under the classifier's own name (``fc.*`` for a ResNet).
        head: transferlab's head inside ``net``; what it sees are the pooled features.
        stages: the backbone's stages, input to output, head excluded; together with the head they hold every
            parameter of ``net`` exactly once.
        num_features: the width of the pooled features (the head's input).
        preprocessing: ``image_size``, ``mean``, ``std``, ``resize_ratio``, ``interpolation`` of the weights.
        no_weight_decay: parameter names the model itself excludes from weight decay (timm's
            ``no_weight_decay()``, e.g. position embeddings), on top of every 1-d parameter.
        build_kwargs: what the architecture was built with beyond its name (a timm ViT's ``img_size``); the
            pretrained weights are fetched for the same.
    """

    name: str
    net: nn.Module
    head: nn.Module
    stages: tuple[Stage, ...]
    num_features: int
    preprocessing: dict[str, Any]
    no_weight_decay: frozenset[str] = field(default_factory=frozenset)
    build_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def stage_names(self) -> list[str]:
        return [stage.name for stage in self.stages]

    def stages_with_head(self) -> tuple[Stage, ...]:
        return (*self.stages, Stage("head", (self.head,)))

    def layers(self) -> list[nn.Module]:
        """The parameterised layers of the backbone in forward order: every module that owns parameters itself
        (``parameters(recurse=False)``: a conv, a norm, a linear; ViT's root for its class token), in registration
        order, head excluded. The unit of ``strategy.freeze_layers``."""
        head_modules = {id(m) for m in self.head.modules()}
        return [
            m
            for m in self.net.modules()
            if id(m) not in head_modules and next(m.parameters(recurse=False), None) is not None
        ]

    def head_prefix(self) -> str:
        """The state_dict prefix of the head (``fc.``), whose source weights are never loaded."""
        return next(name for name, module in self.net.named_modules() if module is self.head) + "."

    def pooled_features(self, images: Tensor) -> Tensor:
        """What the head sees: the backbone's pooled features of a normalised batch (the network's own forward,
        the head's input captured by a hook, so the network needs no surgery and a compiled one no recompile)."""
        captured: list[Tensor] = []
        handle = self.head.register_forward_pre_hook(lambda module, args: captured.append(args[0]))
        try:
            self.net(images)
        finally:
            handle.remove()
        return captured[0]


def check_head(*, hidden_dim: int | None, dropout: float) -> None:
    """The rules of ``model.head`` (config validation calls this too)."""
    if hidden_dim is not None:
        integer("model.head.hidden_dim", hidden_dim, low=1, hint="or null: no hidden layer")
    number("model.head.dropout", dropout, low=0, high=1, high_open=True)


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
        built = timm_backbones.build(name.removeprefix(TIMM_PREFIX), make_head, image_size=image_size)
    else:
        built = torchvision_backbones.build(name, make_head, classifier_hidden=classifier_hidden)
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


def assign_stages(net: nn.Module, head: nn.Module, prefixes: Sequence[tuple[str, Sequence[str]]]) -> tuple[Stage, ...]:
    """Stages from parameter-name prefixes: each stage gets the largest submodules whose parameters are all its
    own, plus loose parameters of modules split between stages. A parameter-free module (activation, pooling,
    dropout) goes to the stage of the nearest parameter before it in registration order, so a dropout in front
    of the head belongs to the last stage and is off while that stage is frozen."""
    order = [stage for stage, _ in prefixes]

    def stage_of(param_name: str) -> str:
        for stage, stage_prefixes in prefixes:
            if any(param_name == p or param_name.startswith(p + ".") for p in stage_prefixes):
                return stage
        raise ValueError(f"parameter {param_name} is in no stage (stages: {order}); the adapter misses it")

    modules: dict[str, list[nn.Module]] = {stage: [] for stage in order}
    params: dict[str, list[nn.Parameter]] = {stage: [] for stage in order}
    head_params = {id(p) for p in head.parameters()}
    current = order[0]

    def visit(module: nn.Module, prefix: str) -> None:
        nonlocal current
        if module is head:
            return
        names = {stage_of(n) for n, p in module.named_parameters(prefix.rstrip(".")) if id(p) not in head_params}
        holds_head = any(m is head for m in module.modules())
        if not names and not holds_head:
            modules[current].append(module)
            return
        if len(names) == 1 and not holds_head:
            current = names.pop()
            modules[current].append(module)
            return
        for param_name, param in module.named_parameters(prefix.rstrip("."), recurse=False):
            current = stage_of(param_name)
            params[current].append(param)
        for child_name, child in module.named_children():
            visit(child, f"{prefix}{child_name}.")

    visit(net, "")
    stages = tuple(Stage(s, tuple(modules[s]), tuple(params[s])) for s in order)
    empty = [stage.name for stage in stages if next(stage.parameters(), None) is None]
    if empty:
        raise ValueError(f"stages {empty} hold no parameter; the adapter's stage table is wrong")
    return stages


# ---------------------------------------------------------------------------------------------------------------
# Names


def available_backbones(pattern: str | None = None, *, timm_models: bool = True) -> list[str]:
    """torchvision classification models by name, then timm models as ``timm/<name>``; ``pattern`` is a glob."""
    names = torchvision_backbones.names()
    if timm_models:
        names += [TIMM_PREFIX + n for n in timm_backbones.names()]
    return [
        n for n in names if pattern is None or fnmatch.fnmatch(n, pattern) or fnmatch.fnmatch(n, TIMM_PREFIX + pattern)
    ]


def check_backbone_name(name: str) -> None:
    if not isinstance(name, str):
        raise ValueError(f"model.backbone={name!r} must be a model name, e.g. resnet50 or timm/convnext_tiny")
    if name.startswith(TIMM_PREFIX):
        if timm_backbones.is_model(name.removeprefix(TIMM_PREFIX)):
            return
    elif name in torchvision_backbones.names():
        return
    candidates = available_backbones() + [TIMM_PREFIX + n for n in timm_backbones.pretrained_tags()]
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.6)
    if not name.startswith(TIMM_PREFIX) and timm_backbones.is_model(name):
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
) -> dict[str, Any]:
    """What the weights of ``name`` expect: ``image_size``, ``mean``, ``std``, ``resize_ratio`` (crop fraction of
    the eval resize), ``interpolation``; read offline from torchvision's weight enum or timm's pretrained config,
    also for random init or a weights file (a file is most likely a derivative of the default weights).
    ``image_size`` and ``resize_ratio`` override the weights' own where given (``data.image_size``)."""
    check_backbone_name(name)
    if name.startswith(TIMM_PREFIX):
        own = timm_backbones.preprocessing(name.removeprefix(TIMM_PREFIX))
    else:
        own = torchvision_backbones.preprocessing(name)
    if image_size is not None:
        check_image_size(name, image_size)
        own["image_size"] = int(image_size)
    if resize_ratio is not None:
        own["resize_ratio"] = float(resize_ratio)
    return own


def preprocessing_for(name: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The preprocessing of a run: the weights' own, with ``data.image_size`` and ``data.resize_ratio`` where they
    are set (null: the weights' own)."""
    return backbone_preprocessing(name, image_size=data.get("image_size"), resize_ratio=data.get("resize_ratio"))


def check_image_size(name: str, image_size: int) -> None:
    """Refuse, before training, an input size the model cannot take (torchvision ViT's fixed patch grid)."""
    if name.startswith(TIMM_PREFIX):
        allowed = timm_backbones.allowed_sizes(name.removeprefix(TIMM_PREFIX))
    else:
        allowed = torchvision_backbones.allowed_sizes(name)
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
    lines.append(f"  preprocessing: {backbone.preprocessing}")
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
            for tag in timm_backbones.pretrained_tags(pattern.removeprefix(TIMM_PREFIX)):
                print_(TIMM_PREFIX + tag)


if __name__ == "__main__":
    main()
