"""Tests for transferlab.reports.stats against figures worked out by hand or by an independent implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score

from transferlab.reports.stats import (
    accuracy_interval,
    few_images_warning,
    format_interval,
    macro_f1,
    macro_f1_interval,
    mcnemar,
)


def wilson_by_hand(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


@pytest.mark.parametrize(("k", "n"), [(91, 100), (9, 9), (0, 12), (140, 153), (1, 2)])
def test_accuracy_interval_is_the_wilson_score_interval(k, n):
    assert accuracy_interval(k, n) == pytest.approx(wilson_by_hand(k, n), abs=1e-9)


def test_accuracy_interval_stays_inside_0_1_and_narrows_with_n():
    low, high = accuracy_interval(9, 9)
    assert 0.70 < low < 0.71 and high == pytest.approx(1.0)  # 9 of 9 right says only "above 70 %"
    wide, narrow = accuracy_interval(9, 10), accuracy_interval(900, 1000)
    assert narrow[1] - narrow[0] < (wide[1] - wide[0]) / 5


def test_mcnemar_exact_p_value_from_the_discordant_pairs():
    # 8 images only A got right, 2 only B: two-sided binomial p = 2 × P(X <= 2 | 10, 1/2) = 2 × 56/1024.
    a = [True] * 8 + [False] * 2 + [True] * 30 + [False] * 5
    b = [False] * 8 + [True] * 2 + [True] * 30 + [False] * 5
    result = mcnemar(a, b)
    assert (result.only_a, result.only_b) == (8, 2)
    assert result.p_value == pytest.approx(112 / 1024)
    assert not result.distinguishable()
    assert "not distinguishable from chance at 5%" in result.sentence("A", "B")
    strong = mcnemar([True] * 20, [False] * 20)
    assert strong.p_value == pytest.approx(2 * 0.5**20) and strong.distinguishable()
    assert mcnemar([True, False], [True, False]).p_value == 1.0
    with pytest.raises(ValueError, match="same images"):
        mcnemar([True], [True, False])


def test_macro_f1_matches_sklearn_and_its_interval_is_seeded():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 4, 200)
    predictions = np.where(rng.random(200) < 0.7, targets, rng.integers(0, 4, 200))
    assert macro_f1(targets, predictions, 4) == pytest.approx(f1_score(targets, predictions, average="macro"))
    low, high = macro_f1_interval(targets, predictions, 4, seed=3)
    assert low < macro_f1(targets, predictions, 4) < high
    assert (low, high) == macro_f1_interval(targets, predictions, 4, seed=3)
    few_low, few_high = macro_f1_interval(targets[:30], predictions[:30], 4, seed=3)
    assert few_high - few_low > high - low


def test_few_images_warning_and_formatting():
    assert few_images_warning({"cat": 30, "dog": 45}) is None
    warning = few_images_warning({"cat": 4, "dog": 45})
    assert "cat 4" in warning and "data.folds" in warning and "dog" not in warning
    assert format_interval(0.9124, (0.8711, 0.9423), 153) == "0.912 [0.871, 0.942] (n=153)"
