"""The 95% confidence interval against hand-computed values."""

import math

import pytest

from metalearn.training.stats import mean_and_ci95


def test_ci95_hand_computed():
    # values 0, 1, 1, 0: mean 0.5, sample variance 1/3, ci = 1.96 * sqrt(1/3) / 2
    mean, ci = mean_and_ci95([0.0, 1.0, 1.0, 0.0])
    assert mean == 0.5
    assert ci == pytest.approx(1.96 * math.sqrt(1 / 3) / 2)


def test_single_value_has_zero_width():
    assert mean_and_ci95([0.7]) == (0.7, 0.0)
