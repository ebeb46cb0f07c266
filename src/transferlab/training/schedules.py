"""Learning-rate schedules, as Lightning scheduler configs built from the length of the run.

Each factory is the ``_target_`` of a ``conf/scheduler/*.yaml`` file (``_partial_: true``); the module calls it
with the optimizer and the run's length, which only the Trainer knows. The schedules themselves are torch's;
these functions only compose them and tell Lightning how often to step them. All of them scale every group's
own learning rate, so the head/backbone ratios of ``param_groups.py`` hold throughout.
"""

from __future__ import annotations

import copy
import logging
import warnings
from typing import Any

from pytorch_lightning import Callback
from torch.optim import Optimizer, lr_scheduler

from transferlab.runs.legacy import upgrade_targets

log = logging.getLogger(__name__)


def warmup_cosine(
    optimizer: Optimizer,
    *,
    total_steps: int | None,
    steps_per_epoch: int,
    warmup_epochs: float = 1.0,
    warmup_start_factor: float = 0.01,
    min_lr_factor: float = 0.0,
) -> dict[str, Any]:
    """Linear warm-up for ``warmup_epochs``, then cosine annealing to ``min_lr_factor`` × lr, stepped per batch."""
    total_steps = _horizon(total_steps, "cosine")
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
    optimizer: Optimizer, *, total_steps: int | None, steps_per_epoch: int, pct_start: float = 0.25
) -> dict[str, Any]:
    """fastai's one-cycle policy; each group's configured rate is its peak."""
    total_steps = _horizon(total_steps, "one_cycle")
    max_lrs = [group["lr"] for group in optimizer.param_groups]
    scheduler = lr_scheduler.OneCycleLR(optimizer, max_lr=max_lrs, total_steps=total_steps, pct_start=pct_start)
    return {"scheduler": scheduler, "interval": "step"}


def step(
    optimizer: Optimizer, *, total_steps: int | None, steps_per_epoch: int, step_epochs: int = 10, gamma: float = 0.1
) -> dict[str, Any]:
    """Multiply every rate by ``gamma`` every ``step_epochs`` epochs."""
    return {
        "scheduler": lr_scheduler.StepLR(optimizer, step_size=step_epochs, gamma=gamma),
        "interval": "epoch",
    }


def plateau(
    optimizer: Optimizer,
    *,
    total_steps: int | None,
    steps_per_epoch: int,
    monitor: str = "val/loss",
    mode: str = "min",
    factor: float = 0.1,
    patience: int = 3,
) -> dict[str, Any]:
    """Multiply every rate by ``factor`` when ``monitor`` stops improving for ``patience`` epochs."""
    scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=factor, patience=patience)
    return {"scheduler": scheduler, "interval": "epoch", "monitor": monitor}


# Training longer: the one place that decides what a schedule does when a resumed run's length changes.
#
# Schedules stepped per batch are planned for the run's length (cosine, one-cycle). Lightning restores a scheduler's
# state from the checkpoint, horizon included, so raising trainer.max_epochs on resume would run the added epochs
# past the end of the old plan: at learning rate 0 for the cosine. Instead, the schedule is rebuilt for the new
# length and moved to the step the run has reached, i.e. the rest of the run follows the schedule it would have had
# had it been started with the new max_epochs (a finished cosine of 10 epochs extended to 20 continues from the
# middle of the longer cosine, at half the peak rate). Per-epoch schedules (step, plateau) plan no length and
# simply go on.


def _horizon(total_steps: int | None, name: str) -> int:
    if total_steps is None:
        raise ValueError(
            f"scheduler={name} plans the learning rate over the run's length, but trainer.max_epochs=-1 with no "
            "trainer.max_steps sets none: set trainer.max_epochs or trainer.max_steps, or use scheduler=step, "
            "scheduler=plateau or scheduler=none (trainer.max_time alone stops a run, but plans no length)"
        )
    return total_steps


def run_length(trainer: Any) -> tuple[int | None, int]:
    """The run's optimizer steps (None without an end: ``trainer.max_epochs=-1`` and no ``trainer.max_steps``) and
    its steps per epoch."""
    estimated = trainer.estimated_stepping_batches  # float("inf") for a run without an end
    if estimated == float("inf"):
        per_epoch = trainer.num_training_batches // max(trainer.accumulate_grad_batches, 1)
        return None, max(per_epoch if per_epoch != float("inf") else 1, 1)
    total_steps = int(estimated)
    epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else 1
    return total_steps, max(total_steps // epochs, 1)


def build_scheduler(spec: Any, optimizer: Optimizer, trainer: Any) -> dict[str, Any]:
    """The Lightning scheduler config of `spec` (a ``conf/scheduler`` config: ``_target_`` + ``_partial_``) for
    `optimizer`, planned for `trainer`'s run; the plan travels inside the scheduler's state (see above)."""
    from hydra.utils import instantiate

    total_steps, steps_per_epoch = run_length(trainer)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    # A checkpoint written before the modules moved names the old module (see runs/legacy.py).
    config = instantiate(upgrade_targets(copy.deepcopy(spec)))(
        optimizer, total_steps=total_steps, steps_per_epoch=steps_per_epoch
    )
    if config.get("interval") == "step":
        # Saved with the scheduler's state_dict (plain ints and floats: checkpoints still load weights_only).
        config["scheduler"].transferlab_plan = {"total_steps": total_steps, "base_lrs": base_lrs}
    return config


def replan(trainer: Any, config: Any, spec: Any) -> str | None:
    """Rebuilds the step-wise scheduler of Lightning's `config` when the run's length no longer matches its plan;
    returns what was done, for the log, or None when nothing changed."""
    plan = getattr(config.scheduler, "transferlab_plan", None)
    total_steps, _ = run_length(trainer)
    if plan is None or config.interval != "step" or plan["total_steps"] == total_steps:
        return None
    optimizer = config.scheduler.optimizer
    for group, base_lr in zip(optimizer.param_groups, plan["base_lrs"], strict=True):
        group["lr"] = base_lr
        group.pop("initial_lr", None)  # the new schedulers start from the configured rates, as at the start
    new = build_scheduler(spec, optimizer, trainer)["scheduler"]
    with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()": fast-forwarding, on purpose
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(min(trainer.global_step, total_steps)):
            new.step()
    config.scheduler = new
    return (
        f"the learning-rate schedule, planned for {plan['total_steps']} steps, is rebuilt for {total_steps} "
        f"(trainer.max_epochs={trainer.max_epochs}) and continues from step {trainer.global_step}: first group's "
        f"rate {optimizer.param_groups[0]['lr']:.3g}"
    )


class ScheduleHorizon(Callback):
    """On a resume whose length changed (``trainer.max_epochs`` raised to train longer), replans every step-wise
    schedule for the new length from the step reached (see :func:`replan`); `spec` is the run's scheduler config."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        for config in trainer.lr_scheduler_configs:
            message = replan(trainer, config, self.spec)
            if message:
                log.info("Resumed with a new length: %s", message)
