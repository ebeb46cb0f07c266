"""The exponential moving average of the weights: Lightning's ``EMAWeightAveraging``, fixed for testing.

Lightning 2.6 swaps the averaged weights in for validation and saves them as each checkpoint's ``state_dict`` (the
raw weights go to ``current_model_state``, from which a resumed fit continues). But its ``on_load_checkpoint`` also
runs when ``trainer.test(ckpt_path=...)`` loads a checkpoint, and then replaces the averaged weights by the raw ones:
the test would measure other weights than the validation that picked the checkpoint. This subclass restores the raw
weights only when fitting.
"""

from __future__ import annotations

from typing import Any

from pytorch_lightning import LightningModule, Trainer
from pytorch_lightning.callbacks import EMAWeightAveraging
from pytorch_lightning.trainer.states import TrainerFn


class EMA(EMAWeightAveraging):
    """EMA of the weights (and BatchNorm statistics), updated after every optimizer step with ``decay``."""

    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
