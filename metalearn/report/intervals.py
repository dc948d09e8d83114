"""Mean, standard deviation and Student's t 95% interval of a few numbers (one per seed), without scipy."""

from __future__ import annotations

import math
from typing import Sequence

# t_{0.975, df} for df = 1..30 (computed to 17 digits with mpmath's incomplete beta function)
_T975 = (
    12.706204736174705, 4.3026527297494639, 3.1824463052837096, 2.7764451051977944, 2.5705818356363155,
    2.44691185114497, 2.3646242515927853, 2.3060041352041667, 2.2621571627982055, 2.2281388519862747,
    2.2009851600916399, 2.1788128296672289, 2.1603686564627925, 2.1447866879178038, 2.1314495455597757,
    2.1199052992212547, 2.1098155778333171, 2.1009220402410385, 2.0930240544083098, 2.0859634472658648,
    2.0796138447276804, 2.0738730679040262, 2.0686576104190487, 2.0638985616280258, 2.0595385527532977,
    2.0555294386428732, 2.0518305164802856, 2.0484071417952452, 2.0452296421327043, 2.0422724563012383,
)  # fmt: skip
_Z975 = 1.959963984540054  # the normal 0.975 quantile


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with `df` degrees of freedom: the table up to 30, then the Cornish-Fisher
    expansion around the normal quantile (within 1e-7 of the exact value from df 31 on)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1, not {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z, v = _Z975, float(df)
    return (
        z
        + (z**3 + z) / (4 * v)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
        + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * v**4)
    )


def mean_std_interval(values: Sequence[float]) -> tuple[float, float | None, float | None]:
    """Mean, sample standard deviation (ddof=1) and the half-width of the t 95% interval of the mean,
    t_{0.975, n-1} * std / sqrt(n); std and half-width are None for a single value."""
    n = len(values)
    if n == 0:
        raise ValueError("no values to summarise")
    mean = math.fsum(values) / n
    if n == 1:
        return mean, None, None
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, std, t975(n - 1) * std / math.sqrt(n)
