"""Downsampling a rectified map with max-pooling, in the cheaper of two orders that compute the same numbers."""

from __future__ import annotations

from torch import nn


def pool_then_activate(activation: nn.Module, pool: nn.Module | None) -> list[nn.Module]:
    """The layers of `activation` followed by `pool`, put in the order pool, then activation.

    Why: a monotone non-decreasing activation (ReLU, LeakyReLU) commutes with max-pooling: the maximum of the
    activated values is the activated maximum, and the gradient reaches the same input elements (where the two
    orders pick different elements of a window, the activation's gradient there is zero in both), so forward
    values and gradients are bit for bit those of the usual order (second-order gradients up to rounding, where a
    channels-last reduction runs in another order). Activating after the pooling touches a quarter of the values,
    and the activation's backward pass was one of the largest memory-bound costs of a Conv4 step on the CPU
    (docs/performance.md).
    """
    return [activation] if pool is None else [pool, activation]
