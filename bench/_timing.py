"""The epoch timer of the benchmarks that train: a Lightning callback."""

from __future__ import annotations

import json
import time
from pathlib import Path

from pytorch_lightning import Callback


class EpochTimer(Callback):
    """Seconds of each training epoch (its training and validation, without checkpoint saving, which Lightning
    runs after every other callback's ``on_validation_end``), written to ``path`` as JSON when fit ends."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.seconds.append(time.perf_counter() - self._start)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.limit_val_batches == 0:  # no validation: the epoch ends here
            self.seconds.append(time.perf_counter() - self._start)

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.path:
            Path(self.path).write_text(json.dumps(self.seconds))
