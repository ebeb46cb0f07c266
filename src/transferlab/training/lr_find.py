"""``tune.lr_find=true``: Lightning's learning-rate finder before training, its suggestion becoming the head's rate.

The finder (``Tuner.lr_find``) trains for ``tune.num_training`` steps with a rate growing exponentially from
``tune.min_lr`` to ``tune.max_lr``, restores the weights, and suggests the rate where the loss falls fastest. The
suggestion replaces ``optimizer.lr`` in the model's hyper-parameters, which ``configure_optimizers`` reads when
the real fit starts: the head trains at the suggestion and every backbone stage keeps its scale of it
(``strategy.backbone_lr_scale``, ``strategy.layer_decay``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt  # the finder's plot() draws with pyplot; closed below
from pytorch_lightning import LightningDataModule, Trainer
from pytorch_lightning.tuner import Tuner

from transferlab.files import atomic_write_json
from transferlab.runs.layout import LR_FIND_FILE, LR_FIND_PLOT
from transferlab.training.classifier import ImageClassifier

if TYPE_CHECKING:
    from pytorch_lightning.tuner.lr_finder import _LRFinder

log = logging.getLogger(__name__)


def find_learning_rate(
    trainer: Trainer,
    model: ImageClassifier,
    datamodule: LightningDataModule,
    output_dir: Path,
    *,
    min_lr: float,
    max_lr: float,
    num_training: int,
) -> float:
    """Runs the finder, sets the model's head learning rate to its suggestion and returns it.

    Writes ``lr_find.json`` (suggestion, the rates and losses tried) and ``plots/lr_find.png`` into `output_dir`,
    and logs the suggestion to the run's loggers as ``tune/lr_find``.

    Raises:
        ValueError: the finder had too few steps to suggest a rate.
    """
    finder = _run_finder(trainer, model, datamodule, min_lr=min_lr, max_lr=max_lr, num_training=num_training)
    suggestion = finder.suggestion() if finder is not None else None
    if suggestion is None:
        raise ValueError(
            f"tune.lr_find could not suggest a learning rate from {len(finder.results.get('lr', [])) if finder else 0} "
            f"steps (tune.num_training={num_training}; the loss diverged early): lower tune.max_lr or raise "
            "tune.num_training, or set optimizer.lr yourself with tune.lr_find=false"
        )
    previous = model.hparams.optimizer["lr"]
    model.hparams.optimizer["lr"] = float(suggestion)
    log.info(
        "LR finder suggests %.3g for the head (optimizer.lr was %.3g); backbone stages keep their scale",
        suggestion,
        previous,
    )
    for logger in trainer.loggers:
        logger.log_metrics({"tune/lr_find": float(suggestion)}, step=0)
    if trainer.is_global_zero:
        _write_finder_outputs(finder, suggestion, output_dir)
    return float(suggestion)


def _run_finder(
    trainer: Trainer,
    model: ImageClassifier,
    datamodule: LightningDataModule,
    *,
    min_lr: float,
    max_lr: float,
    num_training: int,
) -> _LRFinder | None:
    """``Tuner.lr_find`` with ``trainer.max_epochs`` raised for it to ``num_training``, then restored."""
    # Lightning's finder stops at trainer.max_epochs, so on small data (max_epochs x batches < num_training) it ends
    # early and blames a "diverging loss". Like fastai's, it cycles through the training loader until it has its
    # steps: each epoch has at least one batch, so num_training epochs are always enough.
    max_epochs = trainer.fit_loop.max_epochs
    trainer.fit_loop.max_epochs = max(max_epochs if max_epochs is not None and max_epochs >= 0 else 0, num_training)
    try:
        return Tuner(trainer).lr_find(
            model,
            datamodule=datamodule,
            min_lr=min_lr,
            max_lr=max_lr,
            num_training=num_training,
            update_attr=False,  # the rate lives in hparams.optimizer, not in an attribute Lightning knows
        )
    finally:
        trainer.fit_loop.max_epochs = max_epochs


def _write_finder_outputs(finder: _LRFinder, suggestion: float, output_dir: Path) -> None:
    """``lr_find.json`` (suggestion, the rates and losses tried) and the finder's plot ``plots/lr_find.png``."""
    atomic_write_json(
        output_dir / LR_FIND_FILE,
        {"suggestion": float(suggestion), "lr": finder.results["lr"], "loss": finder.results["loss"]},
    )
    figure = finder.plot(suggest=True)
    figure.axes[0].set_title(f"LR finder: suggestion {suggestion:.3g} (head; backbone at its scale)")
    (output_dir / LR_FIND_PLOT).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output_dir / LR_FIND_PLOT, dpi=100)
    plt.close(figure)
