"""The meta-training loop: sample a meta-batch, take an optimiser step, log, validate, checkpoint."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from metalearn.algorithms.base import MetaLearner
from metalearn.errors import ConfigError, MetalearnError
from metalearn.io import append_jsonl
from metalearn.sampling.sampler import EpisodeSampler
from metalearn.training.checkpoint import rng_state, save_checkpoint
from metalearn.training.evaluator import evaluate

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}


@dataclass
class TrainSummary:
    iterations: int
    best_iteration: int
    best_val: float | None
    metric: str


class Trainer:
    """Runs `iterations` meta-updates; keeps `checkpoints/last.pt` and the best-on-validation `best.pt`."""

    def __init__(
        self,
        iterations: int = 1000,
        optimizer: str = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        val_interval: int = 250,
        checkpoint_interval: int = 500,
        log_interval: int = 50,
        grad_clip: float | None = None,
        scheduler: str = "none",
        min_lr: float = 0.0,
        progress: bool = True,
    ) -> None:
        if optimizer not in OPTIMIZERS:
            raise ConfigError(f"trainer.optimizer={optimizer!r} is invalid: must be one of {', '.join(OPTIMIZERS)}")
        self.iterations = iterations
        self.optimizer_name, self.lr, self.weight_decay = optimizer, lr, weight_decay
        self.val_interval, self.checkpoint_interval, self.log_interval = val_interval, checkpoint_interval, log_interval
        self.grad_clip = grad_clip
        self.scheduler_name, self.min_lr = scheduler, min_lr
        self.progress = progress

    def fit(
        self, learner: MetaLearner, sampler: EpisodeSampler, run_dir: Path, config_yaml: str, choices: dict[str, str]
    ) -> TrainSummary:
        run_dir = Path(run_dir)
        ckpt_dir = run_dir / "checkpoints"
        metrics_path = run_dir / "metrics.jsonl"
        optimizer = OPTIMIZERS[self.optimizer_name](learner.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        scheduler = (
            torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(self.iterations, 1), eta_min=self.min_lr)
            if self.scheduler_name == "cosine"
            else None
        )
        metric = "accuracy" if learner.task == "classification" else "mse"
        better = (lambda a, b: a > b) if metric == "accuracy" else (lambda a, b: a < b)
        best_val: float | None = None
        best_iteration = 0
        window: dict[str, list[float]] = {}
        start = time.perf_counter()

        def checkpoint(name: str, iteration: int) -> None:
            save_checkpoint(
                ckpt_dir / name, config=config_yaml, choices=choices, learner=learner.state_dict(), optimizer=optimizer.state_dict(),
                sampler=sampler.state_dict(), rng=rng_state(),
                scheduler=scheduler.state_dict() if scheduler is not None else None, iteration=iteration,
                best_val=best_val, best_iteration=best_iteration,
            )

        learner.train()
        bar = tqdm(total=self.iterations, desc="meta-train", unit="it", disable=not self.progress)
        for iteration in range(1, self.iterations + 1):
            batch = sampler.train_batch()
            learner.set_progress(iteration, self.iterations)
            out = learner.meta_loss(batch)
            if not torch.isfinite(out.loss):
                raise MetalearnError(
                    f"training diverged: the {type(learner).__name__} loss is {float(out.loss)} at iteration {iteration}; "
                    f"the last good checkpoint is in {ckpt_dir} (try a lower trainer.lr or trainer.grad_clip)"
                )
            learner.outer_update(out, optimizer, self.grad_clip)
            if scheduler is not None:
                scheduler.step()
            for key, value in out.metrics.items():
                window.setdefault(key, []).append(value)
            bar.update(1)

            row: dict[str, Any] = {}
            if iteration % self.log_interval == 0 or iteration == self.iterations:
                row.update({f"train_{k}": sum(v) / len(v) for k, v in window.items()})
                window.clear()
                bar.set_postfix({k: f"{v:.3f}" for k, v in row.items()})
            if iteration % self.val_interval == 0 or iteration == self.iterations:
                val = evaluate(learner, sampler, "val", progress=False)
                row[f"val_{metric}"] = val.mean
                row[f"val_{metric}_ci95"] = val.ci95
                if best_val is None or better(val.mean, best_val):
                    best_val, best_iteration = val.mean, iteration
                    checkpoint("best.pt", iteration)
            if row:
                append_jsonl({"iteration": iteration, **row, "elapsed_s": round(time.perf_counter() - start, 3)}, metrics_path)
            if iteration % self.checkpoint_interval == 0 or iteration == self.iterations:
                checkpoint("last.pt", iteration)
        bar.close()
        if self.iterations == 0:  # nothing trained: the initial model is both last and best
            checkpoint("best.pt", 0)
            checkpoint("last.pt", 0)
        return TrainSummary(self.iterations, best_iteration, best_val, metric)
