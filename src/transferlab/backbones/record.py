"""The :class:`Backbone` record, all that the rest of transferlab reads of a backbone (freezing, parameter groups,
feature caching, the linear probe, export), never its family: the network with transferlab's head, its ordered
stages (:class:`Stage`), its feature width and its preprocessing; and :func:`assign_stages`, which turns an adapter's
parameter-name prefixes into stages.

Building a record by name is ``builder``'s; how each family splits is ``torchvision_families``' and
``timm_models``'.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from transferlab.data.preprocessing import Preprocessing


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
        preprocessing: what the weights expect of an image (size, normalisation, resize ratio, interpolation).
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
    preprocessing: Preprocessing
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
