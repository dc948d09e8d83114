"""The seeded episode sampler.

Training episodes come from a generator seeded by the run seed, so `seed=0,1,2` gives independent,
reproducible runs. Validation and test episodes are a fixed set drawn from `eval_seed` alone, so every
run and every checkpoint is scored on the very same episodes.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import torch
from torch import Tensor

from metalearn.data.class_store import ClassStore, SplitData
from metalearn.episode import EpisodeBatch
from metalearn.errors import ConfigError

_SPLIT_STREAM = {"train": 0, "val": 1, "test": 2}


def draw_class_indices(store: ClassStore, n_tasks: int, n_way: int, n_per_class: int, gen: torch.Generator) -> Tensor:
    """Image indices [n_tasks, n_way, n_per_class]: distinct classes per task, distinct images per class.

    Classes come out in random order, so label j (the j-th class) is a random class.
    """
    classes = torch.rand(n_tasks, store.num_classes, generator=gen).topk(n_way, dim=1).indices
    sizes = store.class_sizes[classes]  # [T, n]
    keys = torch.rand(n_tasks, n_way, int(sizes.max()), generator=gen)
    keys.masked_fill_(torch.arange(keys.shape[-1]) >= sizes[..., None], 2.0)  # past a class's end: never picked
    positions = keys.topk(n_per_class, dim=-1, largest=False).indices
    return store.class_offsets[classes][..., None] + positions


class EpisodeSampler:
    """Draws N-way K-shot episodes (or regression tasks) and moves them to the run's device.

    Args:
        data: a SplitData of ClassStores (classification) or a task source with `sample` (regression).
        n_way (int, 5), k_shot (int, 1), q_query (int, 15): classes per episode, support and query images
            per class (for regression: support and query points per task).
        tasks_per_batch (int, 1): episodes per meta-batch.
        val_episodes (int, 100), test_episodes (int, 600): the fixed validation and test episodes.
        eval_batch_size (int, 50): episodes drawn at once in evaluation (memory only, not results).
        seed (int, 0): the training episode stream; eval_seed (int, 0): the fixed episodes, the same in every run.

    Shapes: an EpisodeBatch of B episodes holds support_x [B, n_way * k_shot, C, H, W] in [0, 1], support_y
    [B, n_way * k_shot] (labels 0..n_way-1), query_x [B, n_way * q_query, C, H, W] and query_y.
    """

    def __init__(
        self,
        data: Any,
        n_way: int = 5,
        k_shot: int = 1,
        q_query: int = 15,
        tasks_per_batch: int = 1,
        val_episodes: int = 100,
        test_episodes: int = 600,
        eval_batch_size: int = 50,
        seed: int = 0,
        eval_seed: int = 0,
    ) -> None:
        self.data = data
        self.n_way, self.k_shot, self.q_query = n_way, k_shot, q_query
        self.tasks_per_batch = tasks_per_batch
        self.num_episodes = {"val": val_episodes, "test": test_episodes}
        self.eval_batch_size = eval_batch_size
        self.eval_seed = eval_seed
        self.classification = data.task == "classification"
        self.generator = torch.Generator().manual_seed(seed)
        self.device = torch.device("cpu")
        self.train_transform: Callable[[Tensor, torch.Generator], Tensor] | None = getattr(
            data, "train_transform", None
        )
        self._fixed: dict[str, Any] = {}
        if self.classification:
            self._check_sizes(data)

    def _check_sizes(self, data: SplitData) -> None:
        """Reject episode sizes the data cannot supply, naming the key, the value and the limit."""
        for split in ("train", "val", "test"):
            store = data.split(split)
            if self.n_way > store.num_classes:
                raise ConfigError(
                    f"sampler.n_way={self.n_way} is too large: the {split} split of {data.name} has "
                    f"{store.num_classes} classes, so n_way must be at most {store.num_classes}"
                )
            smallest = int(store.class_sizes.min())
            if self.k_shot + self.q_query > smallest:
                raise ConfigError(
                    f"sampler.k_shot + sampler.q_query = {self.k_shot} + {self.q_query} is too large: the smallest "
                    f"class of the {split} split of {data.name} has {smallest} images, so k_shot + q_query must be "
                    f"at most {smallest}"
                )

    def to(self, device: torch.device) -> "EpisodeSampler":
        self.device = device
        return self

    # --- drawing ------------------------------------------------------------------------------
    def _episodes_from_indices(self, store: ClassStore, idx: Tensor) -> EpisodeBatch:
        t, n, _ = idx.shape
        rows = store.images.view(len(store.images), -1)

        def gather(part: Tensor) -> Tensor:
            # index_select copies whole image rows (advanced indexing, images[idx], is ~20x slower on the CPU);
            # support and query are gathered apart, so each comes out contiguous with no extra copy
            picked = rows.index_select(0, part.reshape(-1)).view(t, -1, *store.image_shape)
            return picked.to(self.device, non_blocking=True).float().div_(255)

        labels = torch.arange(n, device=self.device)
        support_y = labels.repeat_interleave(self.k_shot).expand(t, -1)
        query_y = labels.repeat_interleave(self.q_query).expand(t, -1)
        return EpisodeBatch(
            gather(idx[:, :, : self.k_shot]),
            support_y.contiguous(),
            gather(idx[:, :, self.k_shot :]),
            query_y.contiguous(),
        )

    def _draw(self, split: str, n_tasks: int, gen: torch.Generator) -> EpisodeBatch:
        if self.classification:
            store = self.data.split(split)
            idx = draw_class_indices(store, n_tasks, self.n_way, self.k_shot + self.q_query, gen)
            return self._episodes_from_indices(store, idx)
        return self.data.sample(n_tasks, self.k_shot, self.q_query, gen).to(self.device)

    def train_batch(self) -> EpisodeBatch:
        """The next meta-batch of training episodes (with training augmentation, if any)."""
        batch = self._draw("train", self.tasks_per_batch, self.generator)
        if self.train_transform is not None and self.classification:
            batch.support_x = self.train_transform(batch.support_x, self.generator)
            batch.query_x = self.train_transform(batch.query_x, self.generator)
        return batch

    def eval_batches(self, split: str) -> Iterator[EpisodeBatch]:
        """The fixed validation or test episodes, in chunks of eval_batch_size."""
        total = self.num_episodes[split]
        if split not in self._fixed:  # drawn once from eval_seed; identical in every run
            gen = torch.Generator().manual_seed(self.eval_seed * 1000 + _SPLIT_STREAM[split])
            if self.classification:
                store = self.data.split(split)
                self._fixed[split] = draw_class_indices(store, total, self.n_way, self.k_shot + self.q_query, gen)
            else:
                self._fixed[split] = self.data.sample(total, self.k_shot, self.q_query, gen)
        fixed = self._fixed[split]
        for start in range(0, total, self.eval_batch_size):
            stop = min(start + self.eval_batch_size, total)
            if self.classification:
                yield self._episodes_from_indices(self.data.split(split), fixed[start:stop])
            else:
                yield EpisodeBatch(
                    *(getattr(fixed, f)[start:stop] for f in ("support_x", "support_y", "query_x", "query_y"))
                ).to(self.device)

    # --- resume -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.generator.set_state(state["generator"])
