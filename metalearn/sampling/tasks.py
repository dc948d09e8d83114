"""The seeded task sampler of reinforcement-learning task families (`sampler=tasks`).

What a meta-batch holds here is not data but tasks to act in: their parameters (navigation goals) and the seed of
the rollouts' action noise. Training tasks come from a generator seeded by the run seed; validation and test tasks,
with their rollout seeds, are a fixed set drawn from `eval_seed` alone, so every run and every checkpoint is scored
in the very same tasks with the very same noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import Tensor

from metalearn.errors import ConfigError
from metalearn.sampling.streams import SeededStreams

_ROLLOUTS = 64  # rollouts per task that get distinct noise (a meta-iteration or evaluation uses a handful)
_SEED_RANGE = 2**63 // _ROLLOUTS


@dataclass
class TaskBatch:
    """B tasks of a task family: `params` [B, P] (e.g. goals), the family `env` that steps them, the trajectories to
    roll out per task, and each task's seed [B] (CPU), from which its rollouts' action noise is drawn."""

    params: Tensor
    env: Any
    trajectories: int
    seeds: Tensor

    def __len__(self) -> int:
        return self.params.shape[0]

    def part(self, start: int, stop: int) -> "TaskBatch":
        """Tasks start..stop-1, with their own seeds (so their rollouts are those they have in the whole batch)."""
        return TaskBatch(self.params[start:stop], self.env, self.trajectories, self.seeds[start:stop])

    def noise(self, rollout: int) -> Tensor:
        """Standard normal action noise [H, B, N, A] for the `rollout`-th rollout (0, 1, ...) of these tasks. Each
        task's noise comes from its own seed, so a task's rollouts do not depend on the tasks batched with it."""
        env = self.env
        per_task = [
            torch.randn(
                env.horizon,
                self.trajectories,
                env.action_dim,
                generator=torch.Generator().manual_seed(int(seed) * _ROLLOUTS + rollout),
            )
            for seed in self.seeds
        ]
        return torch.stack(per_task, dim=1).to(self.params.device)

    def reset_seeds(self, rollout: int) -> Tensor:
        """Seeds [B] of the environments' initial states for the `rollout`-th rollout of these tasks."""
        return self.seeds * _ROLLOUTS + rollout


class TaskSampler(SeededStreams):
    """Draws meta-batches of tasks from a reinforcement-learning task family.

    Args:
        data: a task family (`task == "reinforcement"`) with sample_tasks(n, generator), action_dim and horizon
            (and sample_tasks(n, generator, split) where `split_tasks` is true).
        tasks_per_batch (int, 20): tasks per meta-batch (MAML's navigation: 20).
        trajectories (int, 20): trajectories rolled out per task for each adaptation step and for the outer loss.
        eval_trajectories (int | None, None): trajectories per adaptation step on the validation and test tasks
            (Finn et al. 2017 evaluate with 40); None: `trajectories`.
        val_tasks (int, 40), test_tasks (int, 100): the fixed validation and test tasks.
        eval_batch_size (int, 50): tasks evaluated at once (memory only, not results).
        seed (int, 0): the training tasks; eval_seed (int, 0): the fixed tasks, the same in every run.

    n_way is the family's action dimensions: the size of the policy's output, which the learner takes where a
    classification learner takes the classes of an episode.
    """

    classification = False

    def __init__(
        self,
        data: Any,
        tasks_per_batch: int = 20,
        trajectories: int = 20,
        eval_trajectories: int | None = None,
        val_tasks: int = 40,
        test_tasks: int = 100,
        eval_batch_size: int = 50,
        seed: int = 0,
        eval_seed: int = 0,
    ) -> None:
        if getattr(data, "task", None) != "reinforcement":
            raise ConfigError(
                f"sampler=tasks draws tasks of reinforcement-learning task families such as dataset=navigation2d; "
                f"{getattr(data, 'name', 'this data set')} is a {getattr(data, 'task', 'supervised')} data set: use "
                "sampler=episodic"
            )
        super().__init__(seed, eval_seed)
        self.data = data
        self.tasks_per_batch, self.trajectories = tasks_per_batch, trajectories
        self.eval_trajectories = eval_trajectories or trajectories
        self.n_way = data.action_dim
        self.k_shot = self.q_query = trajectories
        self.num_episodes = {"val": val_tasks, "test": test_tasks}
        self.eval_batch_size = eval_batch_size
        self._fixed: dict[str, TaskBatch] = {}

    def describe_shape(self) -> str:
        """For the evaluation's summary line: `tasks, 20 trajectories of 100 steps per adaptation step`."""
        return f"tasks, {self.eval_trajectories} trajectories of {self.data.horizon} steps per adaptation step"

    def _batch(self, n: int, gen: torch.Generator, trajectories: int, split: str) -> TaskBatch:
        # a family with held-out test tasks (Meta-World) draws each split's tasks from its own set
        split_args = (split,) if getattr(self.data, "split_tasks", False) else ()
        params = self.data.sample_tasks(n, gen, *split_args).to(self.device)
        return TaskBatch(params, self.data, trajectories, torch.randint(_SEED_RANGE, (n,), generator=gen))

    def train_batch(self) -> TaskBatch:
        """The next meta-batch of training tasks."""
        return self._batch(self.tasks_per_batch, self.generator, self.trajectories, "train")

    def eval_batches(self, split: str) -> Iterator[TaskBatch]:
        """The fixed validation or test tasks, with their fixed rollout seeds, in chunks of eval_batch_size."""
        if split not in self._fixed:
            gen = self.eval_generator(split)
            # drawn at once: chunks change nothing
            self._fixed[split] = self._batch(self.num_episodes[split], gen, self.eval_trajectories, split)
        fixed = self._fixed[split]
        for start in range(0, len(fixed), self.eval_batch_size):
            yield fixed.part(start, start + self.eval_batch_size)
