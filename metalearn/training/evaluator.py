"""The evaluation protocol: the sampler's fixed episodes (or tasks), a per-episode metric, mean and 95% CI."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from metalearn.algorithms.base import MetaLearner
from metalearn.execution import ranks
from metalearn.execution.precision import autocast
from metalearn.training.stats import mean_and_ci95


@dataclass
class EvalResult:
    metric: str  # "accuracy" (a fraction), "mse" or "return"
    mean: float
    ci95: float
    episodes: int
    others: dict[str, dict[str, float]] = field(default_factory=dict)  # further scores: name -> {mean, ci95}

    def as_dict(self) -> dict:
        out = asdict(self)
        if not self.others:
            del out["others"]
        return out

    def describe(self) -> str:
        if self.metric == "accuracy":
            return f"{100 * self.mean:.2f}% ± {100 * self.ci95:.2f}"
        if self.metric == "return":
            return f"{self.mean:.2f} ± {self.ci95:.2f}"
        return f"{self.mean:.4f} ± {self.ci95:.4f}"


def evaluate(
    learner: MetaLearner, sampler: Any, split: str, progress: bool = False, precision: str = "fp32"
) -> EvalResult:
    """Score the learner on every fixed episode (or task) of `split` ("val" or "test"): the mean and 95% interval
    of its metric, and of the other scores it reports (learner.score_batch). Where the run has several processes,
    each scores its part of every chunk of episodes and every process gets all the scores. `precision`:
    device.precision, the dtype of the forward passes (metalearn.execution.precision)."""
    was_training = learner.training
    learner.eval()
    chunks: list[dict[str, list[float]]] = []  # this rank's scores of its part of each chunk
    total = sampler.num_episodes[split]
    shown = progress and ranks.is_primary()
    device = next(learner.parameters()).device
    bar = tqdm(total=total, desc=f"eval {split}", unit="ep", disable=not shown, leave=False)
    try:
        with torch.no_grad():
            for batch in sampler.eval_batches(split):
                part = ranks.shard(batch, empty_ok=True)  # split over the processes, if several
                with autocast(device, precision):
                    scored = learner.score_batch(part) if len(part) else {}
                chunks.append({name: scores.float().tolist() for name, scores in scored.items()})
                bar.update(len(batch))
    finally:
        bar.close()
        learner.train(was_training)
    values = ranks.gather_in_order(chunks)  # every episode's scores, in the order of the episodes
    summaries = {name: mean_and_ci95(v) for name, v in values.items()}
    mean, ci = summaries.pop(learner.metric)
    others = {name: {"mean": m, "ci95": c} for name, (m, c) in summaries.items()}
    return EvalResult(learner.metric, mean, ci, len(values[learner.metric]), others)
