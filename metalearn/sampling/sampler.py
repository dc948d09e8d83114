"""The seeded episode sampler.

Training episodes come from a generator seeded by the run seed, so `seed=0,1,2` gives independent,
reproducible runs. Validation and test episodes are a fixed set drawn from `eval_seed` alone, so every
run and every checkpoint is scored on the very same episodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from torch import Tensor

from metalearn.data.class_store import ClassStore, SplitData
from metalearn.data.frames import frame_rows
from metalearn.episode import EpisodeBatch
from metalearn.errors import ConfigError
from metalearn.sampling.streams import SeededStreams


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


@dataclass(frozen=True)
class Shape:
    """An episode's shape: classes, support and query images per class (regression: points per task)."""

    n_way: int
    k_shot: int
    q_query: int

    def __str__(self) -> str:
        return f"{self.n_way}-way {self.k_shot}-shot {self.q_query}-query"


class EpisodeSampler(SeededStreams):
    """Draws N-way K-shot episodes (or regression tasks) and moves them to the run's device.

    Args:
        data: a SplitData of ClassStores (classification) or a task source with `sample` (regression).
        n_way (int, 5), k_shot (int, 1), q_query (int, 15): classes per episode, support and query images
            per class (for regression: support and query points per task) of the validation and test episodes,
            and of the training episodes unless given apart.
        train_n_way, train_k_shot, train_q_query (int | None, None): the training episodes' shape where it differs,
            as in the papers (Prototypical Networks train Omniglot 60-way and test 5- and 20-way).
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
        train_n_way: int | None = None,
        train_k_shot: int | None = None,
        train_q_query: int | None = None,
    ) -> None:
        super().__init__(seed, eval_seed)
        self.data = data
        self.n_way, self.k_shot, self.q_query = n_way, k_shot, q_query
        train = Shape(
            n_way if train_n_way is None else train_n_way,
            k_shot if train_k_shot is None else train_k_shot,
            q_query if train_q_query is None else train_q_query,
        )
        self.shapes = {"train": train, "val": Shape(n_way, k_shot, q_query), "test": Shape(n_way, k_shot, q_query)}
        self._train_keys = {"n_way": train_n_way, "k_shot": train_k_shot, "q_query": train_q_query}
        self.tasks_per_batch = tasks_per_batch
        self.num_episodes = {"val": val_episodes, "test": test_episodes}
        self.eval_batch_size = eval_batch_size
        self.classification = data.task == "classification"
        self.train_transform: Callable[[Tensor, torch.Generator], Tensor] | None = getattr(
            data, "train_transform", None
        )
        self._fixed: dict[str, Any] = {}
        if self.classification:
            self._check_sizes(data)

    def describe_shape(self) -> str:
        """What an episode is, for the summary line: `episodes, 5-way 1-shot` (regression: `episodes, 5-shot`)."""
        shots = f"{self.n_way}-way {self.k_shot}-shot" if self.classification else f"{self.k_shot}-shot"
        return f"episodes, {shots}"

    @property
    def train_shape(self) -> Shape:
        return self.shapes["train"]

    def _check_sizes(self, data: SplitData) -> None:
        """Reject episode sizes the data cannot supply, naming the key, the value and the limit."""
        for split, shape in self.shapes.items():
            store = data.split(split)
            # name the keys the user set: train_* where the training shape was given apart
            given = {k for k, v in self._train_keys.items() if split == "train" and v is not None}
            pre = "train_" if "n_way" in given else ""
            if shape.n_way > store.num_classes:
                raise ConfigError(
                    f"sampler.{pre}n_way={shape.n_way} is too large: the {split} split of {data.name} has "
                    f"{store.num_classes} classes, so {pre}n_way must be at most {store.num_classes}"
                )
            smallest = int(store.class_sizes.min())
            pre = "train_" if given & {"k_shot", "q_query"} else ""
            if shape.k_shot + shape.q_query > smallest:
                raise ConfigError(
                    f"sampler.{pre}k_shot + sampler.{pre}q_query = {shape.k_shot} + {shape.q_query} is too large: "
                    f"the smallest class of the {split} split of {data.name} has {smallest} images, so "
                    f"{pre}k_shot + {pre}q_query must be at most {smallest}"
                )

    # --- drawing ------------------------------------------------------------------------------
    def _episodes_from_indices(
        self, store: ClassStore, idx: Tensor, k_shot: int, gen: torch.Generator | None = None
    ) -> EpisodeBatch:
        """Episodes from image indices [T, n_way, k_shot + q_query]: the first k_shot of each class support.
        Clips show the data's `frames` of their stored frames: random within each segment when `gen` is given
        (training), the segments' centres otherwise."""
        t, n, per_class = idx.shape
        shape, frames = store.image_shape, getattr(self.data, "frames", None)
        shown = frames is not None and frames != shape[0]  # clips showing some of their stored frames
        # one row per image (per stored frame, where clips show only some of theirs)
        rows = store.images.view(len(store.images) * (shape[0] if shown else 1), -1)

        def gather(part: Tensor) -> Tensor:
            # index_select copies whole image rows (advanced indexing, images[idx], is ~20x slower on the CPU);
            # support and query are gathered apart, so each comes out contiguous with no extra copy; of clips, only
            # the frames they show are copied
            index = frame_rows(part, shape[0], frames, gen is not None, gen) if shown else part
            picked = rows.index_select(0, index.reshape(-1)).view(t, -1, *((frames, *shape[1:]) if shown else shape))
            return picked.to(self.device, non_blocking=True).float().div_(255)

        labels = torch.arange(n, device=self.device)
        support_y = labels.repeat_interleave(k_shot).expand(t, -1)
        query_y = labels.repeat_interleave(per_class - k_shot).expand(t, -1)
        return EpisodeBatch(
            gather(idx[:, :, :k_shot]),
            support_y.contiguous(),
            gather(idx[:, :, k_shot:]),
            query_y.contiguous(),
            n_way=n,
        )

    def _draw(self, split: str, n_tasks: int, gen: torch.Generator) -> EpisodeBatch | Tensor:
        """n_tasks episodes of the split's shape: an EpisodeBatch (regression) or image indices (classification)."""
        shape = self.shapes[split]
        if self.classification:
            return draw_class_indices(self.data.split(split), n_tasks, shape.n_way, shape.k_shot + shape.q_query, gen)
        return self.data.sample(n_tasks, shape.k_shot, shape.q_query, gen)

    def _episodes(self, split: str, drawn: EpisodeBatch | Tensor, gen: torch.Generator | None = None) -> EpisodeBatch:
        if self.classification:
            return self._episodes_from_indices(self.data.split(split), drawn, self.shapes[split].k_shot, gen)
        return drawn.to(self.device)

    def train_batch(self) -> EpisodeBatch:
        """The next meta-batch of training episodes (with training augmentation, if any)."""
        drawn = self._draw("train", self.tasks_per_batch, self.generator)
        batch = self._episodes("train", drawn, self.generator)
        if self.train_transform is not None and self.classification:
            batch.support_x = self.train_transform(batch.support_x, self.generator)
            batch.query_x = self.train_transform(batch.query_x, self.generator)
        return batch

    def eval_batches(self, split: str) -> Iterator[EpisodeBatch]:
        """The fixed validation or test episodes, in chunks of eval_batch_size."""
        total = self.num_episodes[split]
        if split not in self._fixed:  # drawn once from eval_seed; identical in every run
            gen = self.eval_generator(split)
            self._fixed[split] = self._draw(split, total, gen)
        fixed = self._fixed[split]
        for start in range(0, total, self.eval_batch_size):
            stop = min(start + self.eval_batch_size, total)
            if self.classification:
                yield self._episodes(split, fixed[start:stop])
            else:
                yield self._episodes(split, fixed.part(start, stop))
