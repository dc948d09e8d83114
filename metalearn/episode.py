"""The episode types every layer shares: one few-shot task, and B of them stacked for batched execution.

They sit at the bottom of the package (beside errors.py) because data sets that generate tasks
(sinusoid), the sampler, the execution paths and the learners all speak in them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor


@dataclass
class Episode:
    """One few-shot task: support set to adapt on, query set to score.

    Classification: x float [n*k, C, H, W] in [0, 1], y long [n*k] with labels 0..n_way-1.
    Regression: x float [k, D], y float [k, 1].
    """

    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor

    def to(self, device: torch.device) -> "Episode":
        return type(self)(*(getattr(self, f.name).to(device, non_blocking=True) for f in fields(self)))


@dataclass
class EpisodeBatch(Episode):
    """B episodes with a leading batch dimension on every field."""

    def __len__(self) -> int:
        return self.support_x.shape[0]

    def __getitem__(self, i: int) -> Episode:
        return Episode(self.support_x[i], self.support_y[i], self.query_x[i], self.query_y[i])

    def episodes(self) -> list[Episode]:
        return [self[i] for i in range(len(self))]

    @classmethod
    def of(cls, episode: Episode) -> "EpisodeBatch":
        """A batch of one: `episode` with a leading dimension of size 1 on every field."""
        return cls(*(getattr(episode, f.name)[None] for f in fields(episode)))
