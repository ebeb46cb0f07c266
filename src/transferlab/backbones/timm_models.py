"""timm models as backbones (``model.backbone=timm/<name>``, a pretrained tag allowed: ``timm/convnext_tiny.fb_in22k``).

Nothing here is a table: the model says it all. The head replaces the classifier that ``pretrained_cfg["classifier"]``
names (after ``reset_classifier(0)``, so pooling, head norm and pre-logits stay timm's), sized from the classifier's
own input width; the stages are timm's coarse ``group_matcher`` groups (the ones its layer decay uses), named by
the module path they share (``layer1``, ``stages.2``, ``blocks.11``); parameters timm leaves unmatched besides the
classifier (a head norm) close the last stage. Preprocessing is ``resolve_data_config`` of the pretrained config.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from transferlab.data.preprocessing import Preprocessing

MakeHead = Callable[[int], nn.Module]


def _timm() -> Any:
    """timm, imported on first use: about 1.2 s of start-up (measured with ``python -X importtime``) that a run on
    a torchvision backbone never needs."""
    import timm
    import timm.data
    import timm.models

    return timm


def names() -> list[str]:
    return _timm().list_models()


def pretrained_tags(pattern: str = "*") -> list[str]:
    return _timm().list_pretrained(pattern)


def is_model(name: str) -> bool:
    if not _timm().is_model(name):
        return False
    try:
        _timm().models.get_pretrained_cfg(name)  # an unknown tag raises
    except RuntimeError:
        return False
    return True


def _pretrained_cfg(name: str) -> dict[str, Any]:
    cfg = _timm().models.get_pretrained_cfg(name)
    return cfg.to_dict() if cfg is not None else {}


def build(name: str, make_head: MakeHead, *, image_size: int | None = None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    cfg = _pretrained_cfg(name)
    if image_size and cfg.get("fixed_input_size") and image_size != cfg["input_size"][-1]:
        kwargs["img_size"] = image_size  # timm resamples the position embedding of pretrained weights to it
    return adapt(_timm().create_model(name, pretrained=False, **kwargs), make_head, build_kwargs=kwargs)


def adapt(model: nn.Module, make_head: MakeHead, *, build_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Put a head in place of a timm model's classifier and read its stages from ``group_matcher``."""
    path = model.pretrained_cfg.get("classifier")
    if not isinstance(path, str):
        raise ValueError(
            f"timm model {model.pretrained_cfg.get('architecture')} has several classifiers ({path}), e.g. a "
            "distillation head; pick its non-distilled variant"
        )
    matcher = model.group_matcher(coarse=True)  # before the head goes in: some matchers list the modules
    old = model.get_classifier()
    width = old.in_features if isinstance(old, nn.Linear) else getattr(model, "head_hidden_size", model.num_features)
    model.reset_classifier(0)
    if not isinstance(model.get_submodule(path), nn.Identity):
        raise ValueError(f"timm model {type(model).__name__}: reset_classifier(0) left {path} in place")
    head = make_head(width)
    parent, _, attr = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, head)
    no_decay = model.no_weight_decay() if hasattr(model, "no_weight_decay") else ()
    return {
        "net": model,
        "head": head,
        "num_features": width,
        "stages": stages(model, head, matcher),
        "no_weight_decay": set(no_decay),
        "build_kwargs": dict(build_kwargs or {}),
    }


def stages(model: nn.Module, head: nn.Module, matcher: Any) -> list[tuple[str, list[str]]]:
    """timm's coarse parameter groups, input to output, as (name, [parameter names]); the head excluded."""
    head_params = {id(p) for p in head.parameters()}
    head_names = {n for n, p in model.named_parameters() if id(p) in head_params}
    groups = []
    for _, param_names in sorted(_timm().models.group_parameters(model, matcher).items()):
        if head_names & set(param_names) and groups:
            # timm's unmatched group (the classifier's): what is not the head (a head norm) closes the last stage.
            groups[-1].extend(n for n in param_names if n not in head_names)
        else:
            groups.append([n for n in param_names if n not in head_names])
    named: list[tuple[str, list[str]]] = []
    for index, group in enumerate(g for g in groups if g):
        top = group[0].split(".")[0]
        name = _shared_path(group) or ("stem" if index == 0 else _shared_path([n for n in group if n.startswith(top)]))
        if name in dict(named):
            name = f"{name}_{index}"
        named.append((name, group))
    return named


def _shared_path(param_names: list[str]) -> str:
    """The module path the parameters share, down to its first index (``stages.0.blocks.0`` → ``stages.0``)."""
    paths = [n.split(".")[:-1] for n in param_names]
    shared = []
    for parts in zip(*paths, strict=False):
        if len(set(parts)) != 1:
            break
        shared.append(parts[0])
        if parts[0].isdigit():
            break
    return ".".join(shared)


def preprocessing(name: str) -> Preprocessing:
    """``resolve_data_config`` of the model's pretrained config (no download, no model built)."""
    config = _timm().data.resolve_data_config(pretrained_cfg=_pretrained_cfg(name))
    return Preprocessing(
        image_size=int(config["input_size"][-1]),
        mean=tuple(config["mean"]),
        std=tuple(config["std"]),
        resize_ratio=float(config["crop_pct"]),
        interpolation=str(config["interpolation"]),
    )


def allowed_sizes(name: str) -> tuple[int | None, int | None]:
    """Any size (fixed-size models are built for the size asked); at least ``min_input_size`` where timm says."""
    minimum = _pretrained_cfg(name).get("min_input_size")
    return None, (minimum[-1] if minimum else None)


def pretrained_state_dict(name: str, **build_kwargs: Any) -> Mapping[str, torch.Tensor]:
    """timm's pretrained weights for ``name`` (its default tag if none), from the Hugging Face hub cache."""
    try:
        return _timm().create_model(name, pretrained=True, **build_kwargs).state_dict()
    except (OSError, RuntimeError, ValueError) as error:  # hub errors are OSErrors; offline mode a ValueError too
        cfg = _pretrained_cfg(name)
        hub_id = cfg.get("hf_hub_id")
        if hub_id:
            from huggingface_hub.constants import HF_HUB_CACHE

            folder = Path(HF_HUB_CACHE) / ("models--" + hub_id.replace("/", "--"))
            where = (
                f"the Hugging Face hub repository {hub_id}. Offline? Put its files into {folder} (on a machine with "
                f"network: `hf download {hub_id}`, then copy that folder; HF_HOME="
                f"{os.environ.get('HF_HOME', '~/.cache/huggingface')})"
            )
        else:
            cache = Path(torch.hub.get_dir()) / "checkpoints"
            where = f"{cfg.get('url')}. Offline? Put the file {Path(str(cfg.get('url'))).name} into {cache}"
        raise RuntimeError(
            f"Could not load timm's pretrained weights for {name} from {where}, or pass "
            "model.weights=/path/to/weights (.pth or .safetensors), or train without pretrained weights with "
            f"strategy=scratch. ({type(error).__name__}: {error})"
        ) from error
