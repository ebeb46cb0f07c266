"""What a run shows while it trains: one line per epoch, the Rich bar in a terminal, and no known noise.

``progress=auto`` (the default) keeps Rich's bar when stdout is a terminal and replaces it by one line per epoch
otherwise (SLURM, nohup, CI logs, a pipe), where a bar prints nothing readable. The epoch line always goes to the
job's ``train.log``, so a run's log holds its history whatever the console was. ``progress=bar`` / ``lines`` force
one or the other.
"""

from __future__ import annotations

import logging
import math
import sys
import time
import warnings
from typing import Any

from pytorch_lightning import Callback
from pytorch_lightning.callbacks import ModelSummary, ProgressBar, RichProgressBar
from pytorch_lightning.utilities import rank_zero_only

log = logging.getLogger(__name__)


def log_to_files(level: int, message: str) -> None:
    """``message`` to the job's log files (``train.log``) only, not to the console."""
    record = logging.LogRecord(log.name, level, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


PROGRESS_CHOICES = ("auto", "bar", "lines")


def wants_lines(progress: str) -> bool:
    """Whether the console gets one line per epoch instead of a bar (`progress`: auto, bar or lines)."""
    if progress not in PROGRESS_CHOICES:
        raise ValueError(f"progress={progress!r} must be one of {', '.join(PROGRESS_CHOICES)}")
    return progress == "lines" or (progress == "auto" and not sys.stdout.isatty())


class CleanRichProgressBar(RichProgressBar):
    """Rich's bar without ``v_num`` (the logger's version number, not a metric)."""

    def get_metrics(self, trainer: Any, pl_module: Any) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items


class CompactModelSummary(ModelSummary):
    """Lightning's model summary, logged (console and ``train.log``) without its FLOPs column, which is all zeros
    unless a FLOP counter runs, and once the run knows its parameters."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int = 0,
        **summarize_kwargs: Any,
    ) -> None:
        columns = [(name, values) for name, values in summary_data if name != "FLOPs" or total_flops]
        widths = [max(len(name), *(len(v) for v in values)) for name, values in columns]
        rows = [list(row) for row in zip(*(values for _, values in columns), strict=True)]
        lines = ["  ".join(name.ljust(width) for (name, _), width in zip(columns, widths, strict=True))]
        lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
        lines.append(
            f"{trainable_parameters / 1e6:.2f} M trainable of {total_parameters / 1e6:.2f} M parameters, "
            f"{model_size:.1f} MB"
        )
        log.info("Model summary:\n%s", "\n".join(lines))


class EpochLine(Callback):
    """One line per epoch: epoch/max, train loss, val loss/acc/F1, the head's learning rate, seconds, the run's ETA.

    To the console and ``train.log`` when `console` is true; to ``train.log`` only otherwise (a bar shows it).
    """

    def __init__(self, *, console: bool) -> None:
        self.console = console
        self._epoch_started = 0.0
        self._lr: float | None = None
        self._seconds: list[float] = []

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._epoch_started = time.perf_counter()
        self._lr = head_lr(trainer)

    @rank_zero_only
    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        seconds = time.perf_counter() - self._epoch_started
        self._seconds.append(seconds)
        line = epoch_line(trainer, lr=self._lr, seconds=seconds, epoch_seconds=self._seconds)
        if self.console:
            log.info(line)
        else:
            log_to_files(logging.INFO, line)


def head_lr(trainer: Any) -> float | None:
    """The head's learning rate (the group named ``head``; else the first group)."""
    if not trainer.optimizers:
        return None
    groups = trainer.optimizers[0].param_groups
    group = next((g for g in groups if g.get("name") == "head"), groups[0])
    return float(group["lr"])


def epoch_line(trainer: Any, *, lr: float | None, seconds: float, epoch_seconds: list[float]) -> str:
    metrics = {key: float(value) for key, value in trainer.callback_metrics.items() if value.numel() == 1}
    epoch, max_epochs = trainer.current_epoch + 1, trainer.max_epochs

    def value(*keys: str, fmt: str = ".4f") -> str:
        found = next((metrics[k] for k in keys if k in metrics), None)
        return "-" if found is None or math.isnan(found) else format(found, fmt)

    parts = [
        f"epoch {epoch}/{max_epochs if max_epochs and max_epochs > 0 else '?'}",
        f"train loss {value('train/loss_epoch', 'train/loss')}",
        f"val loss {value('val/loss')} acc {value('val/acc')} f1 {value('val/f1')}",
        f"lr {'-' if lr is None else format(lr, '.3g')}",
        f"{seconds:.1f} s",
    ]
    if max_epochs and max_epochs > epoch:
        recent = epoch_seconds[-3:]  # the first epoch carries start-up costs; recent epochs say more
        parts.append(f"ETA {duration(sum(recent) / len(recent) * (max_epochs - epoch))}")
    return "  ".join(parts)


def duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def progress_callbacks(callbacks: list[Any], *, progress: str, model_summary: bool) -> tuple[list[Any], bool]:
    """`callbacks` with the run's progress display: returns the callbacks and the Trainer's ``enable_progress_bar``.

    Lines: every progress bar is dropped (and Lightning adds none); bar: ``v_num`` leaves Rich's bar. The epoch line
    is added either way, and the model summary without its FLOPs column when the summary is on.
    """
    lines = wants_lines(progress)
    kept = []
    for callback in callbacks:
        if isinstance(callback, ProgressBar) and lines:
            continue
        if type(callback) is RichProgressBar:
            clean = CleanRichProgressBar()
            clean.__dict__.update(callback.__dict__)  # keeps its theme and options
            callback = clean
        kept.append(callback)
    kept.append(EpochLine(console=lines or not any(isinstance(c, ProgressBar) for c in kept)))
    if model_summary and not any(isinstance(c, ModelSummary) for c in kept):
        kept.append(CompactModelSummary())
    return kept, not lines


class _DropMessages(logging.Filter):
    def __init__(self, *prefixes: str) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


NOISE = {
    # Lightning's advertising tips (litlogger, litmodels); the note that our summary replaces Lightning's
    "pytorch_lightning.utilities.rank_zero": ("💡 Tip:", "Trainer already configured with model summary"),
    # said on every checkpoint save, and reads as if checkpoints were loaded unsafely: every checkpoint is read
    # with weights_only=True (checkpointing.py); this is about what a save writes (the full training state)
    "pytorch_lightning.trainer.connectors.checkpoint_connector": ("`weights_only` was not set",),
}


def silence_known_noise() -> None:
    """Filters, at the logger or warning that emits them, messages that say nothing about this run: :data:`NOISE`,
    the ``_pytree`` deprecation that Lightning 2.6 triggers inside torch (not ours to fix), and Lightning's
    warning about modules in eval mode, which frozen stages are on purpose (``finetuning.py``)."""
    for name, prefixes in NOISE.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessages) for f in logger.filters):
            logger.addFilter(_DropMessages(*prefixes))
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")
    # Lightning warns about modules in eval mode when training starts; frozen BatchNorm is exactly that, on purpose.
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode", category=UserWarning)
