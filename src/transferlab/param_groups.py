"""Optimizer parameter groups: one per stage, each split into weight-decayed and not-decayed parameters.

Every group exists from the first step, frozen stages included (their parameters get no gradient, so the
optimizer skips them): the optimizer's state and the scheduler's groups never change shape during a run.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from transferlab.backbones import stage_modules
from transferlab.finetuning import Strategy


def stage_lr_scales(strategy: Strategy) -> dict[str, float]:
    """Learning rate of each stage relative to the head's.

    The backbone gets ``backbone_lr_scale``; with ``layer_decay`` each stage below layer4 is scaled once more per
    stage of distance (layer4 × 1, layer3 × decay, layer2 × decay², …, stem × decay⁴).
    """
    scales = {"head": 1.0}
    decay = strategy.layer_decay or 1.0
    for distance, stage in enumerate(("layer4", "layer3", "layer2", "layer1", "stem")):
        scales[stage] = strategy.backbone_lr_scale * decay**distance
    return scales


def build_param_groups(net: nn.Module, strategy: Strategy, *, lr: float) -> list[dict[str, Any]]:
    """Groups named after their stage (``head``, ``layer4`` … ``stem``), with ``/no_decay`` twins.

    Biases and normalisation weights (every 1-d parameter) get no weight decay, as in timm's
    ``param_groups_weight_decay``: decaying them pulls BatchNorm scales to zero without regularising anything.
    Groups are ordered head first, so ``LearningRateMonitor`` lists the head's rate first.
    """
    if not lr > 0:
        raise ValueError(f"optimizer.lr={lr} must be > 0")
    scales = stage_lr_scales(strategy)
    modules = stage_modules(net)
    groups = []
    for stage in ("head", "layer4", "layer3", "layer2", "layer1", "stem"):
        params = [p for module in modules[stage] for p in module.parameters()]
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        stage_lr = lr * scales[stage]
        groups.append({"name": stage, "params": decay, "lr": stage_lr})
        groups.append({"name": f"{stage}/no_decay", "params": no_decay, "lr": stage_lr, "weight_decay": 0.0})
    return [group for group in groups if group["params"]]
