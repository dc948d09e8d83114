"""Schemas of the `sampler` group."""

from __future__ import annotations

from dataclasses import dataclass

from metalearn.config.schema import Schema, at_least


# --- sampler ------------------------------------------------------------------------------------
@dataclass
class EpisodicSamplerConfig(Schema):
    _target_: str = "metalearn.sampling.sampler.EpisodeSampler"
    n_way: int = 5
    k_shot: int = 1
    q_query: int = 15
    tasks_per_batch: int = 1
    val_episodes: int = 100
    test_episodes: int = 600
    eval_batch_size: int = 50
    seed: int = 0
    eval_seed: int = 0

    def check(self, prefix: str) -> None:
        at_least(f"{prefix}.n_way", self.n_way, 2)
        for key in ("k_shot", "q_query", "tasks_per_batch", "val_episodes", "test_episodes", "eval_batch_size"):
            at_least(f"{prefix}.{key}", getattr(self, key), 1)
