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
from typing import Any, Callable, Iterable

import torch
from torch import nn
from tqdm.auto import tqdm

from metalearn.algorithms.base import MetaLearner, StepOutput
from metalearn.errors import CheckpointError, MetalearnError
from metalearn.execution import ranks
from metalearn.execution.precision import autocast, loss_scaling, make_scaler
from metalearn.files import append_jsonl, remove_stale_temporaries
from metalearn.sampling.sampler import EpisodeSampler
from metalearn.training import interrupt
from metalearn.training.checkpoint import (
    load_checkpoint,
    load_state_checked,
    require,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from metalearn.training.evaluator import evaluate
from metalearn.training.faults import Faults
from metalearn.training.loggers import RunLogger
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


def all_finite(tensors: list[torch.Tensor]) -> bool:
    """Whether every entry of every tensor is finite, with one device sync."""
    return not tensors or bool(torch.stack([t.isfinite().all() for t in tensors]).all())


class Trainer:
    """Runs `iterations` meta-updates; keeps `checkpoints/last.pt` and the best-on-validation `best.pt`.

    Args:
        iterations (int, 1500): meta-updates.
        optimizer (str, "adam"), lr (float, 1e-3), weight_decay (float, 0.0): the outer optimiser.
        val_interval (int, 250), checkpoint_interval (int, 500), log_interval (int, 50): every N iterations
            (and at the end) validate, write last.pt, write a metrics.jsonl row.
        grad_clip (float or None, None): clip the meta-gradient's norm.
        scheduler (str, "none"), min_lr (float, 0.0): "cosine" anneals the outer lr to min_lr; "step" multiplies
            it by lr_gamma every lr_step_size iterations (lr_step_size (int, 2000), lr_gamma (float, 0.5): the
            Prototypical Networks schedule, the rate halved every 2,000 episodes).
        momentum (float, 0.0), nesterov (bool, False): SGD's momentum (optimizer="sgd" only).
        progress (bool, True): a progress bar.
        resume (bool, False): handled by metalearn.run (which checkpoint, which config).
        faults: the test hooks (metalearn.training.faults); by default read from the environment.
    """

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
        lr_step_size: int = 2000,
        lr_gamma: float = 0.5,
        momentum: float = 0.0,
        nesterov: bool = False,
        progress: bool = True,
        resume: bool = False,
    ) -> None:
        self.iterations = iterations
        self.optimizer_name, self.lr, self.weight_decay = optimizer, lr, weight_decay
        self.val_interval, self.checkpoint_interval, self.log_interval = val_interval, checkpoint_interval, log_interval
        self.grad_clip = grad_clip
        self.scheduler_name, self.min_lr = scheduler, min_lr
        self.lr_step_size, self.lr_gamma = lr_step_size, lr_gamma
        self.momentum, self.nesterov = momentum, nesterov
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
        faults: Faults | None = None,
        logger: RunLogger | None = None,
        precision: str = "fp32",
    ) -> TrainSummary:
        """Train from scratch, or continue from the loaded checkpoint `resume_from` (read from `resume_path`).
        `logger` (metalearn.training.loggers.build_logger) receives every metrics.jsonl row after it is written.
        `precision`: device.precision, the dtype of the forward passes (metalearn.execution.precision)."""
        run = _Run(self, learner, sampler, Path(run_dir), config_yaml, choices, faults or Faults.from_env(), precision)
        if resume_from is not None:
            if ranks.is_primary():  # the run directory is ours: a .tmp is from a killed write
                remove_stale_temporaries(run.ckpt_dir)
            run.restore(resume_from, resume_path or run.ckpt_dir / "last.pt")
        if ranks.is_primary():  # the only process that writes the run's files
            _truncate_metrics(run.metrics_path, run.state.metrics_bytes, run.state.metrics_rows)
        ranks.broadcast_state(learner)
        if logger is not None:  # the logger backends: after metrics.jsonl is cut back, which they follow
            run.logger = logger
            logger.start(run.state.iteration + 1)
        run.start = time.perf_counter() - run.state.elapsed_s
        if resume_path is not None and Path(resume_path).resolve() != (run.ckpt_dir / "last.pt").resolve():
            run.save("last.pt")  # resumed from another checkpoint (best.pt): last.pt must not be from a later state
        learner.train()
        bar = tqdm(
            total=self.iterations,
            initial=run.state.iteration,
            desc="meta-train",
            unit="it",
            disable=not (self.progress and ranks.is_primary()),
        )
        with interrupt.deferred():
            for iteration in range(run.state.iteration + 1, self.iterations + 1):
                run.step(iteration)
                bar.update(1)
                row = run.iteration_row(iteration, bar)
                if row:
                    run.log(row)
                if run.improved:
                    run.save("best.pt")
                if self.due(self.checkpoint_interval, iteration):
                    run.save("last.pt")
                # a signal on any rank (preemption) stops every rank after this same iteration, with one checkpoint
                signum = ranks.largest(interrupt.pending() or 0) or None
                if signum is not None:
                    if run.last_saved != iteration:
                        run.save("last.pt")
                    bar.close()
                    saved = run.ckpt_dir / "last.pt"
                    raise ranks.agreed(  # every rank stops here, after the same iteration
                        interrupt.Interrupted(
                            signum, f"stopped after iteration {iteration} of {self.iterations}; saved {saved}"
                        )
                    )
        bar.close()
        if self.iterations == 0 and resume_from is None:  # nothing trained: the initial model is both last and best
            run.save("best.pt")
            run.save("last.pt")
        return TrainSummary(self.iterations, run.state.best_iteration, run.state.best_val, run.metric)

    def due(self, interval: int, iteration: int) -> bool:
        """Whether something done every `interval` iterations (and at the end) is due at `iteration`."""
        return iteration % interval == 0 or iteration == self.iterations


def make_optimizer(trainer: Trainer, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """The outer optimiser: Adam, or SGD with its momentum settings."""
    extra = {"momentum": trainer.momentum, "nesterov": trainer.nesterov} if trainer.optimizer_name == "sgd" else {}
    return OPTIMIZERS[trainer.optimizer_name](parameters, lr=trainer.lr, weight_decay=trainer.weight_decay, **extra)


def make_scheduler(trainer: Trainer, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The outer learning rate's schedule, stepped once per iteration (its state is checkpointed for resume)."""
    if trainer.scheduler_name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(trainer.iterations, 1), eta_min=trainer.min_lr
        )
    if trainer.scheduler_name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=trainer.lr_step_size, gamma=trainer.lr_gamma)
    return None


class _Run:
    """One call of Trainer.fit: the learner, its optimiser, the files it writes and the loop's state."""

    def __init__(
        self,
        trainer: Trainer,
        learner: MetaLearner,
        sampler: EpisodeSampler,
        run_dir: Path,
        config_yaml: str,
        choices: dict[str, str],
        faults: Faults,
        precision: str = "fp32",
    ) -> None:
        self.trainer, self.learner, self.sampler, self.faults = trainer, learner, sampler, faults
        self.device, self.precision = next(learner.parameters()).device, precision
        self.scaler = make_scaler(self.device, precision)
        self.run_dir, self.ckpt_dir, self.metrics_path = run_dir, run_dir / "checkpoints", run_dir / "metrics.jsonl"
        self.config_yaml, self.choices = config_yaml, choices
        self.optimizer = make_optimizer(trainer, learner.parameters())
        self.scheduler = make_scheduler(trainer, self.optimizer)
        self.metric = learner.metric
        self.state = _Progress()
        self.start = time.perf_counter()
        self.last_saved = -1  # the iteration of the last last.pt written or resumed from
        self.improved = False  # whether this iteration's validation beat the best so far
        self.logger: RunLogger | None = None  # set by Trainer.fit

    # --- one iteration ----------------------------------------------------------------------------
    def step(self, iteration: int) -> None:
        """One meta-update, refusing a non-finite loss, gradient or parameter."""
        self.state.iteration = iteration
        learner = self.learner
        batch = ranks.shard(self.sampler.train_batch())  # every rank draws the whole meta-batch and keeps its part
        learner.set_progress(iteration, self.trainer.iterations)
        statistics = ranks.batch_norm_snapshot(learner)
        with autocast(self.device, self.precision):
            out: StepOutput = self.faults.step(learner.meta_loss(batch), iteration)
        algorithm = type(learner).__name__
        loss = ranks.task_mean([out.loss.detach()])[0]  # every rank decides alike
        if not torch.isfinite(loss):
            raise self._diverged(f"the {algorithm} loss is {float(loss)}")
        with loss_scaling(self.scaler):
            learner.outer_update(out, self.optimizer, self.trainer.grad_clip)
        ranks.sync_batch_norm(statistics)
        grads = [p.grad for p in learner.parameters() if p.grad is not None]
        if not all_finite(grads + [p.detach() for p in learner.parameters()]):  # one device sync
            what = "gradient is NaN or infinite" if not all_finite(grads) else "parameter became NaN or infinite"
            raise self._diverged(f"a {algorithm} {what}")
        if self.scheduler is not None:
            self.scheduler.step()
        names = list(out.metrics)
        means = ranks.task_mean([torch.tensor([out.metrics[k] for k in names], dtype=torch.float64)])[0].tolist()
        for key, value in zip(names, means):
            self.state.window.setdefault(key, []).append(value)
        self.faults.point("iteration", iteration)

    def iteration_row(self, iteration: int, bar: Any) -> dict[str, Any]:
        """The metrics row due at `iteration` (training means of the window, validation), or {}."""
        row: dict[str, Any] = {}
        self.improved = False
        if self.trainer.due(self.trainer.log_interval, iteration):
            row.update({f"train_{k}": sum(v) / len(v) for k, v in self.state.window.items()})
            self.state.window.clear()
            bar.set_postfix({k: f"{v:.3f}" for k, v in row.items()})
        if self.trainer.due(self.trainer.val_interval, iteration):
            row.update(self.validate(iteration))
        return row

    def validate(self, iteration: int) -> dict[str, float]:
        """Score the fixed validation episodes; remember the best."""
        val = evaluate(self.learner, self.sampler, "val", progress=self.trainer.progress, precision=self.precision)
        self.faults.point("validation", iteration)
        state = self.state
        if state.best_val is None or (
            val.mean > state.best_val if self.learner.higher_is_better else val.mean < state.best_val
        ):
            state.best_val, state.best_iteration, self.improved = val.mean, iteration, True
        others = {f"val_{name}": score["mean"] for name, score in val.others.items()}
        return {f"val_{self.metric}": val.mean, f"val_{self.metric}_ci95": val.ci95, **others}

    # --- files ------------------------------------------------------------------------------------
    def log(self, row: dict[str, Any]) -> None:
        """Append one metrics.jsonl row; its position goes into the next checkpoint."""
        if not ranks.is_primary():
            return
        state = self.state
        row = {"iteration": state.iteration, **row, "elapsed_s": round(time.perf_counter() - self.start, 3)}
        try:
            if self.faults.write_due("metrics", state.iteration):
                with open(self.metrics_path, "a", encoding="utf-8") as handle:  # half a row, as a crash leaves
                    handle.write(json.dumps(row)[:10])
                self.faults.mid_write("metrics", state.iteration, self.metrics_path)
            append_jsonl(row, self.metrics_path)
        except OSError as exc:
            raise self._write_error(self.metrics_path, exc) from None
        state.metrics_bytes = self.metrics_path.stat().st_size
        state.metrics_rows += 1
        if self.logger is not None:  # the other backends, once metrics.jsonl (the source of truth) holds the row
            try:
                self.logger.log(row)
            except OSError as exc:
                raise self._write_error(Path(exc.filename or self.run_dir), exc) from None

    def save(self, name: str) -> None:
        """Write checkpoints/NAME (last.pt or best.pt) with the whole training state (rank 0 writes it: every rank
        holds the same learner, optimiser and sampler)."""
        state = self.state
        if not ranks.is_primary():
            self.last_saved = state.iteration if name == "last.pt" else self.last_saved
            return
        state.elapsed_s = time.perf_counter() - self.start
        path = self.ckpt_dir / name
        point = "checkpoint" if name == "last.pt" else "best"
        try:
            save_checkpoint(
                path,
                midway=lambda: self.faults.mid_write(point, state.iteration, path),
                config=self.config_yaml,
                choices=self.choices,
                learner=self.learner.state_dict(),
                optimizer=self.optimizer.state_dict(),
                sampler=self.sampler.state_dict(),
                rng=rng_state(),
                scheduler=self.scheduler.state_dict() if self.scheduler is not None else None,
                scaler=self.scaler.state_dict() if self.scaler is not None else None,
                iteration=state.iteration,
                best_val=state.best_val,
                best_iteration=state.best_iteration,
                metrics_bytes=state.metrics_bytes,
                metrics_rows=state.metrics_rows,
                window={k: list(v) for k, v in state.window.items()},
                elapsed_s=state.elapsed_s,
            )
        except OSError as exc:
            raise self._write_error(path, exc) from None
        if name == "last.pt":
            self.last_saved = state.iteration

    # --- resume -----------------------------------------------------------------------------------
    def restore(self, blob: dict[str, Any], path: Path) -> None:
        """Load the whole training state of checkpoint `blob` (read from `path`)."""
        require(blob, path, RESUME_KEYS, "resume training")
        load_state_checked(self.learner, blob["learner"], path)
        try:
            self.optimizer.load_state_dict(blob["optimizer"])
            if self.scheduler is not None:
                if blob["scheduler"] is None:
                    raise ValueError("it was written without a scheduler")
                self.scheduler.load_state_dict(blob["scheduler"])
            self.sampler.load_state_dict(blob["sampler"])
            if self.scaler is not None and blob.get("scaler"):  # fp16's loss scale (older checkpoints: none)
                self.scaler.load_state_dict(blob["scaler"])
            set_rng_state(blob["rng"])
        except (ValueError, KeyError, RuntimeError, TypeError) as exc:
            raise CheckpointError(
                f"checkpoint {path} does not fit this optimizer/scheduler/sampler: {exc}".splitlines()[0]
            ) from None
        self.state = _Progress(
            iteration=int(blob["iteration"]),
            best_val=blob["best_val"],
            best_iteration=int(blob["best_iteration"]),
            metrics_bytes=int(blob["metrics_bytes"]),
            metrics_rows=int(blob["metrics_rows"]),
            window={k: list(v) for k, v in blob["window"].items()},
            elapsed_s=float(blob["elapsed_s"]),
        )
        self.last_saved = self.state.iteration
        self._adopt_later_best(self.ckpt_dir / "best.pt")

    def _adopt_later_best(self, best_path: Path) -> None:
        """best.pt may be newer than last.pt (validated after the last checkpoint, then killed). It is a real
        model scored on the same fixed episodes, so it stays the best to beat; a deterministic rerun reaches
        the same score at the same iteration and leaves it as it is."""
        if not best_path.is_file():
            return
        try:
            best = load_checkpoint(best_path)
        except CheckpointError:
            return  # atomic writes make this unlikely; the rerun rewrites it
        if int(best.get("iteration", -1)) > self.state.iteration and best.get("best_val") is not None:
            self.state.best_val, self.state.best_iteration = best["best_val"], int(best["iteration"])

    # --- errors -----------------------------------------------------------------------------------
    def _diverged(self, what: str) -> MetalearnError:
        if not ranks.is_primary():  # every rank sees the same meta-batch loss and gradient: rank 0 says it
            return ranks.PeerFailed(f"training diverged at iteration {self.state.iteration}")
        kept = (
            f"the last good checkpoint is {self.ckpt_dir / 'last.pt'} (iteration {self.last_saved})"
            if self.last_saved >= 0
            else "no checkpoint had been written yet"
        )
        return ranks.agreed(
            MetalearnError(
                f"training diverged at iteration {self.state.iteration}: {what}; {kept}. "
                "Try a lower trainer.lr or set trainer.grad_clip"
            )
        )

    def _write_error(self, path: Path, exc: OSError) -> MetalearnError:
        kept = (
            f"checkpoints/last.pt (iteration {self.last_saved}) is intact; fix the cause and continue with: "
            f"{resume_command(self.run_dir)}"
            if self.last_saved >= 0
            else "no checkpoint had been written yet"
        )
        return CheckpointError(
            f"cannot write {path} at iteration {self.state.iteration}: {exc.strerror or exc}; {kept}"
        )


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
