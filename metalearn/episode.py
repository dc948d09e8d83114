"""The episode types every layer shares: one few-shot task, and B of them stacked for batched execution.

They sit at the bottom of the package (beside errors.py) because data sets that generate tasks
(sinusoid), the sampler, the execution paths and the learners all speak in them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Episode:
    """One few-shot task: support set to adapt on, query set to score.

    Classification: x float [n*k, C, H, W] in [0, 1], y long [n*k] with labels 0..n_way-1.
    Regression: x float [k, D], y float [k, 1].
    n_way: the classes in the episode, for learners that size their output from the episode (metric learners
      train 60-way and test 5-way); None for regression and where the learner's own n_way applies.
    """

    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor
    n_way: int | None = None

    #: the fields that hold tensors (everything else is carried over unchanged)
    TENSORS = ("support_x", "support_y", "query_x", "query_y")

    def tensors(self) -> tuple[Tensor, ...]:
        return tuple(getattr(self, name) for name in self.TENSORS)

    def to(self, device: torch.device) -> "Episode":
        return type(self)(*(t.to(device, non_blocking=True) for t in self.tensors()), n_way=self.n_way)


@dataclass
class EpisodeBatch(Episode):
    """B episodes with a leading batch dimension on every field."""

    def __len__(self) -> int:
        return self.support_x.shape[0]

    def __getitem__(self, i: int) -> Episode:
        return Episode(*(t[i] for t in self.tensors()), n_way=self.n_way)

    def episodes(self) -> list[Episode]:
        return [self[i] for i in range(len(self))]

    def part(self, start: int, stop: int) -> "EpisodeBatch":
        """Episodes start..stop-1 (views, no copy)."""
        return type(self)(*(t[start:stop] for t in self.tensors()), n_way=self.n_way)

    @classmethod
    def of(cls, episode: Episode) -> "EpisodeBatch":
        """A batch of one: `episode` with a leading dimension of size 1 on every field."""
        return cls(*(t[None] for t in episode.tensors()), n_way=episode.n_way)


@dataclass
class LabelledBatch:
    """A mini-batch of images with their classes, for supervised pre-training (Baseline, Baseline++).

    x float [N, C, H, W] in [0, 1]; y long [N], the class indices of the training split (0..num_classes-1).
    """

    x: Tensor
    y: Tensor

    def __len__(self) -> int:
        return self.x.shape[0]

    def part(self, start: int, stop: int) -> "LabelledBatch":
        """Images start..stop-1 (views, no copy)."""
        return LabelledBatch(self.x[start:stop], self.y[start:stop])
