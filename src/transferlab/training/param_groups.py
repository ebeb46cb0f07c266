"""Optimizer parameter groups: one per stage, each split into weight-decayed and not-decayed parameters.

Every group exists from the first step, frozen stages included (their parameters get no gradient, so the
optimizer skips them): the optimizer's state and the scheduler's groups never change shape during a run.
"""

from __future__ import annotations

from typing import Any

from transferlab.backbones.record import Backbone
from transferlab.checks import number
from transferlab.training.finetuning import Strategy


def stage_lr_scales(strategy: Strategy, stages: list[str]) -> dict[str, float]:
    """Learning rate of each stage (of ``stages``, input to output) relative to the head's.

    The backbone gets ``backbone_lr_scale``; with ``layer_decay`` each stage is scaled once more per stage of
    distance from the last (last × 1, the one before × decay, … the first × decay^(n-1)), as timm's and BEiT's
    layer-wise decay, on the backbone's own stages.
    """
    scales = {"head": 1.0}
    decay = strategy.layer_decay or 1.0
    for distance, stage in enumerate(reversed(stages)):
        scales[stage] = strategy.backbone_lr_scale * decay**distance
    return scales


def check_lr(lr: float | None) -> float:
    """The rule of ``optimizer.lr``, the head's learning rate (config validation calls this too)."""
    if lr is None:
        raise ValueError("optimizer.lr is missing: set the head's learning rate, e.g. optimizer.lr=0.01")
    return number("optimizer.lr", lr, low=0, low_open=True)


def build_param_groups(backbone: Backbone, strategy: Strategy, *, lr: float) -> list[dict[str, Any]]:
    """Groups named after their stage (``head``, then the stages from the last to the first), with ``/no_decay``
    twins.

    Biases, normalisation weights (every 1-d parameter) and what the model itself exempts (timm's
    ``no_weight_decay()``: position embeddings, class tokens) get no weight decay, as in timm's
    ``param_groups_weight_decay``: decaying them pulls BatchNorm scales to zero without regularising anything.
    Groups are ordered head first, so ``LearningRateMonitor`` lists the head's rate first.
    """
    check_lr(lr)
    scales = stage_lr_scales(strategy, backbone.stage_names)
    names = {id(p): name for name, p in backbone.net.named_parameters()}
    exempt = backbone.no_weight_decay
    groups = []
    for stage in reversed(backbone.stages_with_head()):
        params = list(stage.parameters())
        no_decay = [
            p for p in params if p.ndim <= 1 or names.get(id(p), "").endswith(".bias") or names.get(id(p)) in exempt
        ]
        skip = {id(p) for p in no_decay}
        decay = [p for p in params if id(p) not in skip]
        stage_lr = lr * scales[stage.name]
        groups.append({"name": stage.name, "params": decay, "lr": stage_lr})
        groups.append({"name": f"{stage.name}/no_decay", "params": no_decay, "lr": stage_lr, "weight_decay": 0.0})
    return [group for group in groups if group["params"]]
