"""Owns stopping a run that can no longer give a useful model: a loss that is NaN or infinite, or weights that are.

Lightning's ``detect_anomaly`` finds where a NaN comes from, at several times the cost of a step, and
``EarlyStopping(check_finite=True)`` looks only at the monitored validation metric, after a whole epoch of NaN
updates (and a checkpoint of NaN weights). Here a broken model is caught wherever it first shows, cheaply:

- every training step's loss (one small device sync a step), so a diverging run stops before its epoch ends;
- the validation loss, before the epoch's checkpoints are written: an update that made the weights NaN (a step
  whose own loss was finite, as with ``optimizer.lr=inf`` and one step an epoch) shows there, and no "best"
  checkpoint of NaN weights is chosen or saved, the last epoch included;
- every floating-point tensor of a checkpoint's ``state_dict`` as it is saved (one pass over the weights, next to
  writing them), so no checkpoint ever holds a non-finite weight, whatever the path that led there.

The run then raises :class:`NonFinite` naming the epoch, the step and the learning rates: no metrics.json is
written, the command exits non-zero, and ``checkpoints/last.ckpt``, if any, holds the last finite state.
"""

from __future__ import annotations

from typing import Any

import torch
from pytorch_lightning import Callback, LightningModule, Trainer


class NonFinite(ValueError):
    """The training loss, the validation loss or the weights became NaN or infinite: the settings' or the data's to
    fix (a learning rate too high, NaN pixels), so the entry scripts print it as one ``Error:`` line."""


def _stop(trainer: Trainer, what: str, where: str) -> NonFinite:
    rates = sorted({group["lr"] for optimizer in trainer.optimizers for group in optimizer.param_groups})
    return NonFinite(
        f"{what} at epoch {trainer.current_epoch}, step {trainer.global_step}{where}: the run is stopped, and "
        f"checkpoints/last.ckpt, if any, holds the last finite state. Likely causes: a learning rate too high for "
        f"this model (the rates now: {rates[:3]}; lower optimizer.lr), or input images holding NaN or infinite "
        "values."
    )


class StopOnNonFinite(Callback):
    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None or bool(torch.isfinite(loss).all()):  # one small device sync per step
            return
        raise _stop(trainer, f"the training loss is {loss.item()}", f" (batch {batch_idx})")

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Runs before ModelCheckpoint's own on_validation_end (Lightning orders checkpoint callbacks last), so the
        # epoch's checkpoints are not written when this raises.
        loss = trainer.callback_metrics.get("val/loss")
        if trainer.sanity_checking or loss is None or bool(torch.isfinite(loss).all()):
            return
        raise _stop(trainer, f"the validation loss is {float(loss)} (the weights are no longer finite)", "")

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        broken = [
            name
            for name, tensor in checkpoint.get("state_dict", {}).items()
            if torch.is_tensor(tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
        ]
        if broken:
            shown = ", ".join(broken[:3]) + (f" and {len(broken) - 3} more" if len(broken) > 3 else "")
            raise _stop(trainer, f"the weights {shown} are NaN or infinite", " (found as a checkpoint was saved)")
