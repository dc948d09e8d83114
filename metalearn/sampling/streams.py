"""The random streams every sampler has: a training stream seeded by the run, and fixed evaluation streams."""

from __future__ import annotations

import torch
from torch import Tensor

_SPLIT_STREAM = {"train": 0, "val": 1, "test": 2}


class SeededStreams:
    """A sampler's seeded generators and device.

    The training stream (`generator`) follows `seed` and is saved and restored with checkpoints, so a resumed run
    draws what it would have drawn; each evaluation split's stream is derived from `eval_seed` alone, so every run
    and every checkpoint is scored on the same fixed draws.
    """

    def __init__(self, seed: int, eval_seed: int) -> None:
        self.generator = torch.Generator().manual_seed(seed)
        self.eval_seed = eval_seed
        self.device = torch.device("cpu")

    def eval_generator(self, split: str) -> torch.Generator:
        """A new generator for the fixed draws of `split` ("val" or "test")."""
        return torch.Generator().manual_seed(self.eval_seed * 1000 + _SPLIT_STREAM[split])

    def to(self, device: torch.device):  # type: ignore[no-untyped-def]
        """Deliver batches on `device`; returns the sampler."""
        self.device = device
        return self

    def state_dict(self) -> dict[str, Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.generator.set_state(state["generator"])
