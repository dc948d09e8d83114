"""Student's t 95% interval across seeds against hand-computed values."""

from __future__ import annotations

import math

import pytest

from metalearn.report.intervals import mean_std_interval, t975


@pytest.mark.parametrize(
    "df, quantile",
    [
        (1, 12.706204736174705),  # tan(0.475 pi)
        (2, 4.3026527297494639),  # sqrt(2 * 0.95**2 / (1 - 0.95**2))
        (10, 2.2281388519862747),
        (30, 2.0422724563012383),
        (31, 2.0395134463964086),  # past the table: the Cornish-Fisher expansion
        (60, 2.0002978220142604),
        (120, 1.979930405082441),
        (1000, 1.9623390808264085),
    ],
)
def test_t_quantiles(df: int, quantile: float) -> None:
    assert t975(df) == pytest.approx(quantile, rel=2e-8)


def test_closed_forms_of_one_and_two_degrees_of_freedom() -> None:
    assert t975(1) == pytest.approx(math.tan(0.475 * math.pi), rel=1e-14)
    assert t975(2) == pytest.approx(math.sqrt(2 * 0.95**2 / (1 - 0.95**2)), rel=1e-14)


def test_quantiles_fall_towards_the_normal_one() -> None:
    values = [t975(df) for df in range(1, 200)]
    assert all(a > b for a, b in zip(values, values[1:]))
    assert values[-1] > 1.959963984540054


def test_interval_of_three_seeds_by_hand() -> None:
    # 0.80, 0.82, 0.84: mean 0.82, sample std 0.02, half-width t_{0.975,2} * 0.02 / sqrt(3)
    mean, std, half = mean_std_interval([0.80, 0.82, 0.84])
    assert mean == pytest.approx(0.82, abs=1e-15)
    assert std == pytest.approx(0.02, rel=1e-12)
    assert half == pytest.approx(4.302652729911275 * 0.02 / math.sqrt(3), rel=1e-9)


def test_one_seed_has_no_interval() -> None:
    assert mean_std_interval([0.7]) == (0.7, None, None)
    with pytest.raises(ValueError):
        mean_std_interval([])
    with pytest.raises(ValueError):
        t975(0)
