"""Schedules keep every group's learning rate in proportion and follow their shape over the run."""

from __future__ import annotations

import pytest
import torch

from transferlab.training.schedules import one_cycle, plateau, step, warmup_cosine


def two_group_optimizer() -> torch.optim.Optimizer:
    head, backbone = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    return torch.optim.SGD([{"params": [head], "lr": 0.1}, {"params": [backbone], "lr": 0.01}], lr=0.1)


def run_schedule(config: dict, steps: int) -> list[list[float]]:
    optimizer, lrs = config["scheduler"].optimizer, []
    for _ in range(steps):
        lrs.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        config["scheduler"].step()
    return lrs


def test_warmup_cosine_rises_then_decays_keeping_the_ratio() -> None:
    config = warmup_cosine(two_group_optimizer(), total_steps=20, steps_per_epoch=5, warmup_epochs=1)
    assert config["interval"] == "step"
    lrs = run_schedule(config, 20)
    head = [lr[0] for lr in lrs]
    assert head[0] == pytest.approx(0.001)  # warm-up starts at 1% of the rate
    assert max(head) == pytest.approx(0.1, rel=1e-6) and head.index(max(head)) == 5
    assert head[-1] < 0.01 and head[6:] == sorted(head[6:], reverse=True)
    for head_lr, backbone_lr in lrs:
        assert backbone_lr == pytest.approx(head_lr / 10)


def test_one_cycle_peaks_at_each_groups_own_rate() -> None:
    lrs = run_schedule(one_cycle(two_group_optimizer(), total_steps=20, steps_per_epoch=5), 20)
    assert max(lr[0] for lr in lrs) == pytest.approx(0.1, rel=1e-3)
    assert max(lr[1] for lr in lrs) == pytest.approx(0.01, rel=1e-3)


def test_step_and_plateau_step_per_epoch() -> None:
    assert step(two_group_optimizer(), total_steps=1, steps_per_epoch=1)["interval"] == "epoch"
    config = plateau(two_group_optimizer(), total_steps=1, steps_per_epoch=1, patience=0)
    assert config["monitor"] == "val/loss" and config["interval"] == "epoch"
