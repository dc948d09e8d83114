"""The meta-training loop: sample a meta-batch, take an optimiser step, log, validate, checkpoint.

Every checkpoint holds the whole training state (learner, optimiser, scheduler, every RNG, the sampler's
generator, the iteration, the best validation score, the partial logging window and the metrics.jsonl
position), so a run resumed from it continues bit for bit as if it had never stopped. Order within an
iteration: update -> metrics row -> best.pt -> last.pt; a resume truncates metrics.jsonl to the
checkpoint's position, so rows written after it are recomputed, never duplicated or lost.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from metalearn.algorithms.base import MetaLearner
from metalearn.errors import CheckpointError, ConfigError, MetalearnError
from metalearn.io import append_jsonl
from metalearn.sampling.sampler import EpisodeSampler
from metalearn.training import faults, interrupt
from metalearn.training.checkpoint import (
    load_checkpoint,
    load_state_checked,
    require,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from metalearn.training.evaluator import evaluate
from metalearn.training.resume import resume_command

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}
RESUME_KEYS = (
    "learner",
    "optimizer",
    "scheduler",
    "sampler",
    "rng",
    "iteration",
    "best_val",
    "best_iteration",
    "metrics_bytes",
    "metrics_rows",
    "window",
    "elapsed_s",
)


@dataclass
class TrainSummary:
    iterations: int
    best_iteration: int
    best_val: float | None
    metric: str


@dataclass
class _Progress:
    """The loop's own state, saved in every checkpoint."""

    iteration: int = 0
    best_val: float | None = None
    best_iteration: int = 0
    metrics_bytes: int = 0
    metrics_rows: int = 0
    window: dict[str, list[float]] = field(default_factory=dict)
    elapsed_s: float = 0.0


def _all_finite(tensors: list[torch.Tensor]) -> bool:
    return not tensors or bool(torch.stack([t.isfinite().all() for t in tensors]).all())


class Trainer:
    """Runs `iterations` meta-updates; keeps `checkpoints/last.pt` and the best-on-validation `best.pt`."""

    def __init__(
        self,
        iterations: int = 1500,
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
        resume: bool = False,  # handled by metalearn.run (which checkpoint, which config)
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
        self,
        learner: MetaLearner,
        sampler: EpisodeSampler,
        run_dir: Path,
        config_yaml: str,
        choices: dict[str, str],
        resume_from: dict[str, Any] | None = None,
        resume_path: Path | None = None,
    ) -> TrainSummary:
        """Train from scratch, or continue from the loaded checkpoint `resume_from` (read from `resume_path`)."""
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
        algorithm = type(learner).__name__
        state = _Progress()
        if resume_from is not None:
            state = self._restore(
                resume_from, resume_path or ckpt_dir / "last.pt", learner, optimizer, scheduler, sampler
            )
            self._adopt_later_best(ckpt_dir / "best.pt", state)
        _truncate_metrics(metrics_path, state.metrics_bytes, state.metrics_rows)
        start = time.perf_counter() - state.elapsed_s
        last_saved = state.iteration if resume_from is not None else -1

        def checkpoint(name: str) -> None:
            state.elapsed_s = time.perf_counter() - start
            path = ckpt_dir / name
            try:
                save_checkpoint(
                    path,
                    fault_point="checkpoint" if name == "last.pt" else "best",
                    config=config_yaml,
                    choices=choices,
                    learner=learner.state_dict(),
                    optimizer=optimizer.state_dict(),
                    sampler=sampler.state_dict(),
                    rng=rng_state(),
                    scheduler=scheduler.state_dict() if scheduler is not None else None,
                    iteration=state.iteration,
                    best_val=state.best_val,
                    best_iteration=state.best_iteration,
                    metrics_bytes=state.metrics_bytes,
                    metrics_rows=state.metrics_rows,
                    window={k: list(v) for k, v in state.window.items()},
                    elapsed_s=state.elapsed_s,
                )
            except OSError as exc:
                raise self._write_error(path, exc, state.iteration, run_dir, last_saved) from None

        def append_row(row: dict[str, Any]) -> None:
            try:
                if faults.write_fault_due("metrics", state.iteration):
                    with open(metrics_path, "a", encoding="utf-8") as handle:  # half a row, as a crash mid-write leaves
                        handle.write(json.dumps(row)[:10])
                    faults.write_fault("metrics", state.iteration, metrics_path)
                append_jsonl(row, metrics_path)
            except OSError as exc:
                raise self._write_error(metrics_path, exc, state.iteration, run_dir, last_saved) from None
            state.metrics_bytes = metrics_path.stat().st_size
            state.metrics_rows += 1

        if resume_path is not None and Path(resume_path).resolve() != (ckpt_dir / "last.pt").resolve():
            checkpoint("last.pt")  # resumed from another checkpoint (best.pt): last.pt must not be from a later state
        learner.train()
        bar = tqdm(
            total=self.iterations, initial=state.iteration, desc="meta-train", unit="it", disable=not self.progress
        )
        with interrupt.deferred():
            for iteration in range(state.iteration + 1, self.iterations + 1):
                state.iteration = iteration
                batch = sampler.train_batch()
                learner.set_progress(iteration, self.iterations)
                out = learner.meta_loss(batch)
                out = faults.poison_step(out, iteration)
                if not torch.isfinite(out.loss):
                    raise self._diverged(
                        f"the {algorithm} loss is {float(out.loss.detach())}", iteration, ckpt_dir, last_saved
                    )
                learner.outer_update(out, optimizer, self.grad_clip)
                grads = [p.grad for p in learner.parameters() if p.grad is not None]
                if not _all_finite(grads + [p.detach() for p in learner.parameters()]):  # one device sync
                    what = (
                        "gradient is NaN or infinite" if not _all_finite(grads) else "parameter became NaN or infinite"
                    )
                    raise self._diverged(f"a {algorithm} {what}", iteration, ckpt_dir, last_saved)
                if scheduler is not None:
                    scheduler.step()
                for key, value in out.metrics.items():
                    state.window.setdefault(key, []).append(value)
                bar.update(1)
                faults.kill_point("iteration", iteration)

                row: dict[str, Any] = {}
                improved = False
                if iteration % self.log_interval == 0 or iteration == self.iterations:
                    row.update({f"train_{k}": sum(v) / len(v) for k, v in state.window.items()})
                    state.window.clear()
                    bar.set_postfix({k: f"{v:.3f}" for k, v in row.items()})
                if iteration % self.val_interval == 0 or iteration == self.iterations:
                    val = evaluate(learner, sampler, "val", progress=False)
                    faults.kill_point("validation", iteration)
                    row[f"val_{metric}"] = val.mean
                    row[f"val_{metric}_ci95"] = val.ci95
                    if state.best_val is None or better(val.mean, state.best_val):
                        state.best_val, state.best_iteration, improved = val.mean, iteration, True
                if row:
                    append_row({"iteration": iteration, **row, "elapsed_s": round(time.perf_counter() - start, 3)})
                if improved:
                    checkpoint("best.pt")
                if iteration % self.checkpoint_interval == 0 or iteration == self.iterations:
                    checkpoint("last.pt")
                    last_saved = iteration
                signum = interrupt.pending()
                if signum is not None:
                    if last_saved != iteration:
                        checkpoint("last.pt")
                    bar.close()
                    raise interrupt.Interrupted(
                        signum,
                        f"stopped after iteration {iteration} of {self.iterations}; saved {ckpt_dir / 'last.pt'}",
                    )
        bar.close()
        if self.iterations == 0 and resume_from is None:  # nothing trained: the initial model is both last and best
            checkpoint("best.pt")
            checkpoint("last.pt")
        return TrainSummary(self.iterations, state.best_iteration, state.best_val, metric)

    # --- resume -----------------------------------------------------------------------------------
    @staticmethod
    def _restore(
        blob: dict[str, Any], path: Path, learner: MetaLearner, optimizer: Any, scheduler: Any, sampler: Any
    ) -> _Progress:
        require(blob, path, RESUME_KEYS, "resume training")
        load_state_checked(learner, blob["learner"], path)
        try:
            optimizer.load_state_dict(blob["optimizer"])
            if scheduler is not None:
                if blob["scheduler"] is None:
                    raise ValueError("it was written without a scheduler")
                scheduler.load_state_dict(blob["scheduler"])
            sampler.load_state_dict(blob["sampler"])
            set_rng_state(blob["rng"])
        except (ValueError, KeyError, RuntimeError, TypeError) as exc:
            raise CheckpointError(
                f"checkpoint {path} does not fit this optimizer/scheduler/sampler: {exc}".splitlines()[0]
            ) from None
        return _Progress(
            iteration=int(blob["iteration"]),
            best_val=blob["best_val"],
            best_iteration=int(blob["best_iteration"]),
            metrics_bytes=int(blob["metrics_bytes"]),
            metrics_rows=int(blob["metrics_rows"]),
            window={k: list(v) for k, v in blob["window"].items()},
            elapsed_s=float(blob["elapsed_s"]),
        )

    @staticmethod
    def _adopt_later_best(best_path: Path, state: _Progress) -> None:
        """best.pt may be newer than last.pt (validated after the last checkpoint, then killed). It is a real
        model scored on the same fixed episodes, so it stays the best to beat; a deterministic rerun reaches
        the same score at the same iteration and leaves it as it is."""
        if not best_path.is_file():
            return
        try:
            best = load_checkpoint(best_path)
        except CheckpointError:
            return  # atomic writes make this unlikely; the rerun rewrites it
        if int(best.get("iteration", -1)) > state.iteration and best.get("best_val") is not None:
            state.best_val, state.best_iteration = best["best_val"], int(best["iteration"])

    # --- errors -----------------------------------------------------------------------------------
    @staticmethod
    def _diverged(what: str, iteration: int, ckpt_dir: Path, last_saved: int) -> MetalearnError:
        kept = (
            f"the last good checkpoint is {ckpt_dir / 'last.pt'} (iteration {last_saved})"
            if last_saved >= 0
            else "no checkpoint had been written yet"
        )
        return MetalearnError(
            f"training diverged at iteration {iteration}: {what}; {kept}. Try a lower trainer.lr or set trainer.grad_clip"
        )

    @staticmethod
    def _write_error(path: Path, exc: OSError, iteration: int, run_dir: Path, last_saved: int) -> MetalearnError:
        kept = (
            f"checkpoints/last.pt (iteration {last_saved}) is intact; fix the cause and continue with: {resume_command(run_dir)}"
            if last_saved >= 0
            else "no checkpoint had been written yet"
        )
        return CheckpointError(f"cannot write {path} at iteration {iteration}: {exc.strerror or exc}; {kept}")


def _truncate_metrics(path: Path, size: int, rows: int) -> None:
    """Cut metrics.jsonl back to the checkpoint's position; rows after it will be written again."""
    if not path.exists():
        if size:
            raise CheckpointError(
                f"{path} is missing, but the checkpoint records {rows} rows; restore it or start a new run"
            )
        return
    with open(path, "r+b") as handle:
        head = handle.read(size)
        if len(head) < size or head.count(b"\n") != rows or (size and not head.endswith(b"\n")):
            raise CheckpointError(
                f"{path} does not match the checkpoint (it records {rows} rows in {size} bytes); "
                "the file was edited or replaced: restore it or start a new run"
            )
        handle.truncate(size)
        handle.flush()
        os.fsync(handle.fileno())
