"""Which way each metric is better, for every layer that compares runs or checkpoints (no torch here)."""

from __future__ import annotations

# metrics where a lower value is better; every other one (accuracy, return) is better higher
LOWER_IS_BETTER = frozenset({"mse", "mae", "loss", "nll", "error", "regret"})


def lower_is_better(metric: str | None) -> bool:
    return metric in LOWER_IS_BETTER
