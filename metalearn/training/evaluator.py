"""The evaluation protocol: the sampler's fixed episodes, a per-episode metric, mean and 95% CI."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from tqdm.auto import tqdm

from metalearn.algorithms.base import MetaLearner, task_metric
from metalearn.sampling.sampler import EpisodeSampler
from metalearn.training.stats import mean_and_ci95


@dataclass
class EvalResult:
    metric: str  # "accuracy" (a fraction) or "mse"
    mean: float
    ci95: float
    episodes: int

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        if self.metric == "accuracy":
            return f"{100 * self.mean:.2f}% ± {100 * self.ci95:.2f}"
        return f"{self.mean:.4f} ± {self.ci95:.4f}"


def evaluate(learner: MetaLearner, sampler: EpisodeSampler, split: str, progress: bool = False) -> EvalResult:
    """Score the learner on every fixed episode of `split` ("val" or "test")."""
    was_training = learner.training
    learner.eval()
    values: list[float] = []
    bar = tqdm(total=sampler.num_episodes[split], desc=f"eval {split}", unit="ep", disable=not progress, leave=False)
    try:
        with torch.no_grad():
            for batch in sampler.eval_batches(split):
                outputs = learner.predict_batch(batch)
                values += task_metric(outputs, batch.query_y, learner.task).tolist()
                bar.update(len(batch))
    finally:
        bar.close()
        learner.train(was_training)
    mean, ci = mean_and_ci95(values)
    return EvalResult("accuracy" if learner.task == "classification" else "mse", mean, ci, len(values))
