"""Training a classifier with Lightning: the LightningModule (:mod:`.classifier`), freezing and unfreezing
(:mod:`.finetuning`), parameter groups and schedules (:mod:`.param_groups`, :mod:`.schedules`), batch mixing and
EMA (:mod:`.mixing`, :mod:`.ema`), stopping a diverged run (:mod:`.nonfinite`), writing and resuming checkpoints
(:mod:`.checkpointing`), the learning-rate finder (:mod:`.lr_find`), what a run shows and tells trackers
(:mod:`.progress`, :mod:`.trackers`), and the frozen backbone's features for a feature cache
(:mod:`.features`).
"""

from transferlab._lazy import lazy_exports

_EXPORTS = {
    "ImageClassifier": "classifier",
    "Strategy": "finetuning",
    "Finetuning": "finetuning",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
