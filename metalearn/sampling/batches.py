"""Mini-batches of the training classes' images, for learners pre-trained by plain supervised classification
(Baseline and Baseline++, Chen et al. 2019); validation and test stay the fixed episodes of EpisodeSampler."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from metalearn.episode import LabelledBatch
from metalearn.errors import ConfigError
from metalearn.sampling.sampler import EpisodeSampler


class BatchSampler(EpisodeSampler):
    """Training draws mini-batches of `batch_size` images from the training split only, in epochs: each epoch visits
    every training image once in a random order (seeded by the run's seed, continued exactly on resume). The
    labels are the images' classes among the training split's classes. Validation and test episodes are the
    sampler's fixed episodes, as for every other learner, so results compare.

    Args:
        data: a SplitData of ClassStores (classification only).
        batch_size (int, 16): images per mini-batch (Chen et al.: 16).
        the rest: as EpisodeSampler (n_way, k_shot, q_query shape the validation and test episodes).

    Shapes: a LabelledBatch of x [batch_size, C, H, W] in [0, 1] and y [batch_size].
    """

    def __init__(self, data: Any, batch_size: int = 16, **episodes: Any) -> None:
        if data.task != "classification":
            raise ConfigError("sampler=batches draws labelled images for classification; this data set is regression")
        super().__init__(data, **episodes)
        self.batch_size = batch_size
        self.store = data.split("train")
        # the training split's class of every image, for the labels
        self.labels = torch.repeat_interleave(torch.arange(self.store.num_classes), self.store.class_sizes)
        self.order: Tensor = torch.empty(0, dtype=torch.long)
        self.position = 0

    @property
    def num_classes(self) -> int:
        return self.store.num_classes

    def _next_indices(self) -> Tensor:
        picked = []
        wanted = self.batch_size
        while wanted:
            if self.position >= len(self.order):  # a new epoch
                self.order = torch.randperm(len(self.labels), generator=self.generator)
                self.position = 0
            take = self.order[self.position : self.position + wanted]
            picked.append(take)
            self.position += len(take)
            wanted -= len(take)
        return torch.cat(picked)

    def train_batch(self) -> LabelledBatch:  # type: ignore[override]
        """The next mini-batch of training images and their classes (with training augmentation, if any)."""
        idx = self._next_indices()
        rows = self.store.images.view(len(self.store.images), -1).index_select(0, idx)
        x = rows.view(len(idx), *self.store.image_shape).to(self.device, non_blocking=True).float().div_(255)
        if self.train_transform is not None:
            x = self.train_transform(x, self.generator)
        return LabelledBatch(x, self.labels[idx].to(self.device, non_blocking=True))

    def state_dict(self) -> dict[str, Tensor]:
        return {**super().state_dict(), "order": self.order, "position": torch.tensor(self.position)}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        super().load_state_dict(state)
        self.order, self.position = state["order"], int(state["position"])
