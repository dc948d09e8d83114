"""`metaworld_ml1`: a Meta-World ML1 benchmark (Yu et al., CoRL 2019) as a task family of `dataset=gym`.

ML1 is one manipulation skill (reach-v3, push-v3, pick-place-v3, ...) of a Sawyer arm, whose tasks are 50
training and 50 test goal (and object) positions; the goal is hidden from the observation, so a policy learns it
from rewards. The environment here is a gymnasium wrapper with the task hook of metalearn.data.gym_family: a task's
parameters are [index, held_out] (an index into the benchmark's training tasks, or into its test tasks where
held_out is 1). Training and validation tasks are drawn from the training tasks, test tasks from the held-out ones,
as Meta-World's protocol asks.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from metalearn.errors import ConfigError

EXTRA = "metaworld"
_BENCHMARKS: dict[tuple[str, int], Any] = {}  # ML1(task_name, seed) builds its 100 tasks: once per process


def _benchmark(task_name: str, seed: int) -> Any:
    try:
        metaworld = importlib.import_module("metaworld")
    except ImportError:
        raise ConfigError(f'dataset=metaworld_ml1 needs Meta-World: pip install "metalearn[{EXTRA}]"') from None
    if task_name not in metaworld.ML1.ENV_NAMES:
        names = ", ".join(sorted(metaworld.ML1.ENV_NAMES)[:6])
        raise ConfigError(
            f"dataset.env_kwargs.task_name={task_name} is not a Meta-World ML1 task; for example {names}, ..."
        )
    if (task_name, seed) not in _BENCHMARKS:
        _BENCHMARKS[task_name, seed] = metaworld.ML1(task_name, seed=seed)
    return _BENCHMARKS[task_name, seed]


def ml1(task_name: str = "reach-v3", seed: int = 0) -> Any:
    """The ML1 environment of `task_name` (its benchmark's tasks drawn with `seed`), with the task hook."""
    gym = importlib.import_module("gymnasium")
    benchmark = _benchmark(task_name, seed)

    class ML1Tasks(gym.Wrapper):  # type: ignore[misc, name-defined]
        """One ML1 skill whose task is set by [index, held_out] parameters."""

        def __init__(self) -> None:
            super().__init__(benchmark.train_classes[task_name]())
            self.tasks = (benchmark.train_tasks, benchmark.test_tasks)
            self.env.set_task(self.tasks[0][0])  # an environment needs a task before its first reset

        def sample_tasks(self, n: int, rng: np.random.Generator, split: str = "train") -> np.ndarray:
            held_out = int(split == "test")
            index = rng.integers(len(self.tasks[held_out]), size=n)
            return np.stack([index, np.full(n, held_out)], axis=1)

        def set_task(self, task: np.ndarray) -> None:
            self.env.set_task(self.tasks[int(task[1])][int(task[0])])

    return ML1Tasks()
