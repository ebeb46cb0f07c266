"""A callback that kills its own process with SIGKILL at a chosen moment (loaded by train.py in kill tests)."""

from __future__ import annotations

import io
import os
import signal

import torch
from pytorch_lightning import Callback


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillAt(Callback):
    """``where``: ``train`` (second batch of an epoch), ``val`` (first validation batch) or ``save`` (halfway
    through writing a checkpoint file), in epoch ``epoch``."""

    def __init__(self, where: str, epoch: int) -> None:
        self.where, self.epoch = where, epoch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.where == "train" and trainer.current_epoch == self.epoch and batch_idx == 1:
            _die()

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if self.where == "val" and trainer.current_epoch == self.epoch and not trainer.sanity_checking:
            _die()

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        if self.where != "save" or trainer.current_epoch != self.epoch:
            return
        real_save = torch.save

        def half_then_die(obj, file, *args, **kwargs):
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            file.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            file.flush()
            os.fsync(file.fileno())
            _die()

        torch.save = half_then_die
