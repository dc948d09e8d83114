"""Schemas of the `sampler` group."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

from metalearn.config.schema import Schema, at_least, at_most, seed_range


# --- sampler ------------------------------------------------------------------------------------
@dataclass
class EpisodicSamplerConfig(Schema):
    _target_: str = "metalearn.sampling.sampler.EpisodeSampler"
    n_way: int = 5  # for regression data k_shot / q_query are support / query points per task
    k_shot: int = 1
    q_query: int = 15  # query images per class (15 is the standard evaluation protocol)
    tasks_per_batch: int = 1  # tasks per meta-batch
    val_episodes: int = 100  # fixed validation episodes, used to keep the best checkpoint
    test_episodes: int = 600  # fixed test episodes
    eval_batch_size: int = 50  # episodes drawn at once during evaluation (memory only, not results)
    seed: int = 0  # the training episode stream (the YAML sets it to the run's seed)
    eval_seed: int = 0  # the fixed validation / test episodes: the same for every run
    # the training episodes' shape where it differs from the test episodes' (null: the same), as in the papers
    train_n_way: Optional[int] = None
    train_k_shot: Optional[int] = None
    train_q_query: Optional[int] = None

    def check(self, prefix: str) -> None:
        at_least(f"{prefix}.n_way", self.n_way, 2)
        if self.train_n_way is not None:
            at_least(f"{prefix}.train_n_way", self.train_n_way, 2)
        for key in ("k_shot", "q_query", "tasks_per_batch", "val_episodes", "test_episodes", "eval_batch_size"):
            at_least(f"{prefix}.{key}", getattr(self, key), 1)
        for key in ("train_k_shot", "train_q_query"):
            if getattr(self, key) is not None:
                at_least(f"{prefix}.{key}", getattr(self, key), 1)
        for key in ("n_way", "k_shot", "q_query", "tasks_per_batch", "eval_batch_size"):
            at_most(f"{prefix}.{key}", getattr(self, key), 10_000)
        for key in ("train_n_way", "train_k_shot", "train_q_query"):
            if getattr(self, key) is not None:
                at_most(f"{prefix}.{key}", getattr(self, key), 10_000)
        for key in ("val_episodes", "test_episodes"):
            at_most(f"{prefix}.{key}", getattr(self, key), 1_000_000, "the fixed episodes are drawn up front")
        for key in ("seed", "eval_seed"):
            seed_range(f"{prefix}.{key}", getattr(self, key))


@dataclass
class BatchSamplerConfig(EpisodicSamplerConfig):
    """Mini-batches of training images for supervised pre-training (metalearn.sampling.batches.BatchSampler);
    validation and test episodes as the episodic sampler's."""

    _target_: str = "metalearn.sampling.batches.BatchSampler"
    batch_size: int = 16  # images per mini-batch (Chen et al.: 16)

    def check(self, prefix: str) -> None:
        super().check(prefix)
        at_least(f"{prefix}.batch_size", self.batch_size, 1)
        at_most(f"{prefix}.batch_size", self.batch_size, 100_000)


@dataclass
class TaskSamplerConfig(Schema):
    """Meta-batches of tasks of a reinforcement-learning task family (metalearn.sampling.tasks.TaskSampler)."""

    _target_: str = "metalearn.sampling.tasks.TaskSampler"
    REINFORCEMENT: ClassVar[bool] = True  # of reinforcement learning (validate._check_reinforcement)
    tasks_per_batch: int = 20  # tasks per meta-batch (MAML's 2D navigation: 20)
    trajectories: int = 20  # trajectories per task for each adaptation step and for the outer loss
    eval_trajectories: Optional[int] = None  # per adaptation step in evaluation (Finn et al.: 40); None: trajectories
    val_tasks: int = 40  # fixed validation tasks, used to keep the best checkpoint
    test_tasks: int = 100  # fixed test tasks
    eval_batch_size: int = 50  # tasks evaluated at once (memory only, not results)
    seed: int = 0  # the training task stream (the YAML sets it to the run's seed)
    eval_seed: int = 0  # the fixed validation / test tasks and their rollouts' noise: the same for every run

    def check(self, prefix: str) -> None:
        for key in ("tasks_per_batch", "trajectories", "val_tasks", "test_tasks", "eval_batch_size"):
            at_least(f"{prefix}.{key}", getattr(self, key), 1)
        for key in ("tasks_per_batch", "trajectories", "eval_batch_size"):
            at_most(f"{prefix}.{key}", getattr(self, key), 100_000)
        if self.eval_trajectories is not None:
            at_least(f"{prefix}.eval_trajectories", self.eval_trajectories, 1)
            at_most(f"{prefix}.eval_trajectories", self.eval_trajectories, 100_000)
        for key in ("val_tasks", "test_tasks"):
            at_most(f"{prefix}.{key}", getattr(self, key), 1_000_000, "the fixed tasks are drawn up front")
        for key in ("seed", "eval_seed"):
            seed_range(f"{prefix}.{key}", getattr(self, key))
