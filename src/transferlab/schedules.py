"""Learning-rate schedules, as Lightning scheduler configs built from the length of the run.

Each factory is the ``_target_`` of a ``conf/scheduler/*.yaml`` file (``_partial_: true``); the module calls it
with the optimizer and the run's length, which only the Trainer knows. The schedules themselves are torch's;
these functions only compose them and tell Lightning how often to step them. All of them scale every group's
own learning rate, so the head/backbone ratios of ``param_groups.py`` hold throughout.
"""

from __future__ import annotations

from typing import Any

from torch.optim import Optimizer, lr_scheduler


def warmup_cosine(
    optimizer: Optimizer,
    *,
    total_steps: int,
    steps_per_epoch: int,
    warmup_epochs: float = 1.0,
    warmup_start_factor: float = 0.01,
    min_lr_factor: float = 0.0,
) -> dict[str, Any]:
    """Linear warm-up for ``warmup_epochs``, then cosine annealing to ``min_lr_factor`` × lr, stepped per batch."""
    warmup_steps = min(round(warmup_epochs * steps_per_epoch), max(total_steps - 1, 0))
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    cosine = lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(total_steps - warmup_steps, 1), eta_min=min(base_lrs) * min_lr_factor
    )
    if warmup_steps == 0:
        return {"scheduler": cosine, "interval": "step"}
    warmup = lr_scheduler.LinearLR(optimizer, start_factor=warmup_start_factor, total_iters=warmup_steps)
    scheduler = lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[warmup_steps])
    return {"scheduler": scheduler, "interval": "step"}


def one_cycle(
    optimizer: Optimizer, *, total_steps: int, steps_per_epoch: int, pct_start: float = 0.25
) -> dict[str, Any]:
    """fastai's one-cycle policy; each group's configured rate is its peak."""
    max_lrs = [group["lr"] for group in optimizer.param_groups]
    scheduler = lr_scheduler.OneCycleLR(optimizer, max_lr=max_lrs, total_steps=total_steps, pct_start=pct_start)
    return {"scheduler": scheduler, "interval": "step"}


def step(
    optimizer: Optimizer, *, total_steps: int, steps_per_epoch: int, step_epochs: int = 10, gamma: float = 0.1
) -> dict[str, Any]:
    """Multiply every rate by ``gamma`` every ``step_epochs`` epochs."""
    return {
        "scheduler": lr_scheduler.StepLR(optimizer, step_size=step_epochs, gamma=gamma),
        "interval": "epoch",
    }


def plateau(
    optimizer: Optimizer,
    *,
    total_steps: int,
    steps_per_epoch: int,
    monitor: str = "val/loss",
    mode: str = "min",
    factor: float = 0.1,
    patience: int = 3,
) -> dict[str, Any]:
    """Multiply every rate by ``factor`` when ``monitor`` stops improving for ``patience`` epochs."""
    scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=factor, patience=patience)
    return {"scheduler": scheduler, "interval": "epoch", "monitor": monitor}
