"""Owns the statistics of an honest comparison: intervals on test figures, and the paired test of two models.

- Accuracy gets a Wilson score interval from the number of test images (scipy's ``binomtest``): unlike the normal
  approximation it stays inside [0, 1] and is right for small n and accuracies near 1.
- Macro F1 has no closed form, so its interval is a seeded percentile bootstrap over the test images (scipy's
  ``bootstrap``, paired resampling of (true class, predicted class)).
- Two models scored on the identical test images are compared by McNemar's exact test on the images exactly one
  of them got right (a two-sided binomial test of those discordant counts against 1/2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# scipy is imported inside the functions: the sweep callbacks import this module at every launch, before the
# command line is even parsed, and scipy.stats costs a second.

CONFIDENCE = 0.95
RESAMPLES = 500
FEW_PER_CLASS = 30  # test images of a class below which a figure's interval is too wide to rank on


def accuracy_interval(correct: int, n: int, *, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of an accuracy of `correct` out of `n`."""
    from scipy.stats import binomtest

    if n < 1:
        raise ValueError("an accuracy interval needs at least one test image")
    interval = binomtest(int(correct), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


def macro_f1(targets: np.ndarray, predictions: np.ndarray, num_classes: int, axis: int = -1) -> np.ndarray:
    """Macro F1 over the classes that occur (as target or prediction), along `axis`; vectorised for bootstrap.

    Written out rather than calling sklearn's ``f1_score`` once per resample, which costs a millisecond each.
    """
    targets, predictions = np.moveaxis(targets, axis, -1), np.moveaxis(predictions, axis, -1)
    scores, present = [], []
    for c in range(num_classes):
        is_target, is_predicted = targets == c, predictions == c
        tp = (is_target & is_predicted).sum(-1)
        denominator = is_target.sum(-1) + is_predicted.sum(-1)  # 2tp + fp + fn
        scores.append(np.divide(2 * tp, denominator, out=np.zeros(denominator.shape), where=denominator > 0))
        present.append(denominator > 0)
    return np.sum(scores, axis=0) / np.maximum(np.sum(present, axis=0), 1)


def macro_f1_interval(
    targets: Sequence[int],
    predictions: Sequence[int],
    num_classes: int,
    *,
    seed: int = 0,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
) -> tuple[float, float]:
    """A seeded percentile-bootstrap interval of macro F1 over the test images."""
    from scipy.stats import bootstrap

    targets, predictions = np.asarray(targets), np.asarray(predictions)
    if len(targets) < 2:
        raise ValueError("a bootstrap interval needs at least two test images")
    result = bootstrap(
        (targets, predictions),
        lambda t, p, axis=-1: macro_f1(t, p, num_classes, axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


@dataclass(frozen=True)
class McNemar:
    """McNemar's exact test of two models on the same images."""

    only_a: int  # images model A got right and model B wrong
    only_b: int
    p_value: float

    def distinguishable(self, alpha: float = 0.05) -> bool:
        return self.p_value < alpha

    def sentence(self, a: str, b: str, alpha: float = 0.05) -> str:
        verdict = "a real difference" if self.distinguishable(alpha) else "not distinguishable from chance"
        return (
            f"{a} alone right on {self.only_a} image(s), {b} alone on {self.only_b}: McNemar exact p = "
            f"{self.p_value:.3g}, {verdict} at {alpha:.0%}"
        )


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> McNemar:
    """McNemar's exact test from per-image correctness of two models, listed in the same image order."""
    from scipy.stats import binomtest

    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"McNemar's test needs the same images for both models ({len(a)} vs {len(b)})")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    p_value = 1.0 if only_a + only_b == 0 else float(binomtest(only_a, only_a + only_b, 0.5).pvalue)
    return McNemar(only_a, only_b, p_value)


def few_images_warning(class_counts: dict[str, int], split: str = "test") -> str | None:
    """A warning when some class has fewer than `FEW_PER_CLASS` images in `split`, else None."""
    few = {name: count for name, count in class_counts.items() if count < FEW_PER_CLASS}
    if not few:
        return None
    shown = ", ".join(f"{name} {count}" for name, count in list(few.items())[:8]) + (", …" if len(few) > 8 else "")
    return (
        f"the {split} split has fewer than {FEW_PER_CLASS} images in {len(few)} class(es) ({shown}): "
        "its figures have wide intervals and small differences between runs are noise. Repeat over folds "
        "(-m data.folds=5 data.fold=0,1,2,3,4) or seeds to compare strategies."
    )


def percent(value: float | None) -> str:
    """``91.2%``, or "" for a missing figure (summary tables)."""
    return "" if value is None else f"{100 * value:.1f}%"


def seconds(value: float | None) -> str:
    """``42 s``, or "" for a missing duration."""
    return "" if value is None else f"{value:.0f} s"


def format_interval(value: float, interval: Sequence[float] | None, n: int | None = None) -> str:
    """``0.912 [0.871, 0.942] (n=153)``."""
    text = f"{value:.3f}"
    if interval is not None:
        text += f" [{interval[0]:.3f}, {interval[1]:.3f}]"
    return text + (f" (n={n})" if n is not None else "")


def test_intervals(targets: Sequence[int], predictions: Sequence[int], num_classes: int, *, seed: int) -> dict:
    """What ``metrics.json`` records of a test split's uncertainty: ``test_n``, ``test_acc_ci``, ``test_f1_ci``."""
    targets, predictions = np.asarray(targets), np.asarray(predictions)
    n = len(targets)
    return {
        "test_n": n,
        "test_acc_ci": list(accuracy_interval(int((targets == predictions).sum()), n)) if n else None,
        "test_f1_ci": list(macro_f1_interval(targets, predictions, num_classes, seed=seed)) if n > 1 else None,
    }
