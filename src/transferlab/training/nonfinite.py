"""Owns stopping a run that can no longer give a useful model: a training loss that is NaN or infinite.

Lightning's ``detect_anomaly`` finds where a NaN comes from, at several times the cost of a step, and
``EarlyStopping(check_finite=True)`` looks only at the monitored validation metric, after a whole epoch of NaN
updates (and a checkpoint of NaN weights). This checks every training step's loss and stops at the first
non-finite one, before the epoch ends: no checkpoint is written after it, so ``last.ckpt`` keeps the last finite
state, and the run exits with an error instead of training to the end on NaN.
"""

from __future__ import annotations

from typing import Any

import torch
from pytorch_lightning import Callback, LightningModule, Trainer


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite."""


class StopOnNonFiniteLoss(Callback):
    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None or bool(torch.isfinite(loss).all()):  # one small device sync per step
            return
        rates = sorted({group["lr"] for optimizer in trainer.optimizers for group in optimizer.param_groups})
        raise NonFiniteLoss(
            f"the training loss is {loss.item()} at epoch {trainer.current_epoch}, step {trainer.global_step} "
            f"(batch {batch_idx}): the run is stopped, and checkpoints/last.ckpt, if any, holds the last finite "
            f"state. Likely causes: a learning rate too high for this model (the rates now: {rates[:3]}; lower "
            "optimizer.lr), or input images holding NaN or infinite values."
        )
