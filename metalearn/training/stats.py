"""Summary statistics of an evaluation: mean and 95% confidence interval."""

from __future__ import annotations

import math
from typing import Sequence


def mean_and_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of the normal 95% interval, 1.96 * std / sqrt(n) (sample std, ddof=1)."""
    n = len(values)
    if n == 0:
        raise ValueError("no values to summarise")
    mean = sum(values) / n
    if n == 1:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, 1.96 * math.sqrt(var) / math.sqrt(n)
