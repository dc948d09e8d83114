"""One run: validate the config, build data -> sampler -> model -> learner, then train and test (`train`) or
score a checkpoint (`evaluate_checkpoint`), and write results.json."""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from metalearn.algorithms.base import MetaLearner
from metalearn.build import build
from metalearn.config import validate_config
from metalearn.device import resolve_device, reuse_freed_memory
from metalearn.errors import ConfigError, RunDirError
from metalearn.execution import compiled, ranks
from metalearn.files import FAILED_FILE, RESULTS_FILE, atomic_write_json
from metalearn.sampling.sampler import EpisodeSampler
from metalearn.seeding import seed_everything
from metalearn.training.checkpoint import checkpoint_file, load_checkpoint, load_state_checked
from metalearn.training.evaluator import evaluate
from metalearn.training.loggers import build_logger
from metalearn.training.resume import find_resume_source, resumed_config, wants_resume

log = logging.getLogger("metalearn")

# Groups that define what a checkpoint holds; in mode=eval they come from the checkpoint.
SAVED_GROUPS = ("dataset", "sampler", "algorithm", "model")


@dataclass
class Components:
    """What a run builds from its config, in this order: the device, data, sampler and learner."""

    device: torch.device
    data: Any
    sampler: EpisodeSampler
    learner: MetaLearner


def run(cfg: DictConfig, run_dir: Path, overrides: list[str], choices: dict[str, str]) -> dict[str, Any]:
    """Execute one run in `run_dir` (mode=train or mode=eval) and return what was written to results.json."""
    entry = evaluate_checkpoint if cfg.get("mode") == "eval" else train
    return entry(cfg, Path(run_dir), overrides, choices)


def train(cfg: DictConfig, run_dir: Path, overrides: list[str], choices: dict[str, str]) -> dict[str, Any]:
    """Meta-train (from scratch, or resuming a stopped run in `run_dir`), then test the best checkpoint."""
    started = time.perf_counter()
    with ranks.together("setting up the run"):  # of several processes, one reports a mistake all of them find
        cfg = validate_config(cfg)
        resume_path, resume_blob = None, None
        resuming = wants_resume(cfg.get("resume"), cfg.trainer.get("resume"))
        if resuming:
            resume_path, resume_blob = find_resume_source(cfg, run_dir)
            cfg, choices = resumed_config(cfg, overrides, choices, run_dir, resume_blob, resume_path or run_dir)
            cfg = validate_config(cfg)
        # a missing package is refused before anything is written; only rank 0 logs
        logger = build_logger(cfg.logger if ranks.is_primary() else None, run_dir, cfg)
        _prepare_dir(run_dir, resuming)
        parts = _build(cfg)
    _announce(run_dir, parts, choices, "resuming" if resuming else "training")
    fit = build(cfg.trainer).fit(
        parts.learner,
        parts.sampler,
        run_dir,
        OmegaConf.to_yaml(cfg, resolve=True),
        choices,
        resume_from=resume_blob,
        resume_path=resume_path,
        logger=logger,
        precision=cfg.device.precision,
    )
    ranks.barrier()  # rank 0 has written best.pt, which every process scores
    summary = {
        "iterations": fit.iterations,
        "best_iteration": fit.best_iteration,
        f"best_val_{fit.metric}": fit.best_val,
    }
    results = _test(cfg, parts, run_dir / "checkpoints" / "best.pt", run_dir, choices, summary, started)
    logger.finish(results)
    return results


def evaluate_checkpoint(
    cfg: DictConfig, run_dir: Path, overrides: list[str], choices: dict[str, str]
) -> dict[str, Any]:
    """Score `cfg.checkpoint`. `cfg` is the checkpoint's own config with this command's settings on top
    (metalearn.cli.prepare); naming a saved group's option other than the checkpoint's is refused."""
    started = time.perf_counter()
    with ranks.together("setting up the evaluation"):
        if not cfg.get("checkpoint"):
            validate_config(cfg)  # which says what mode=eval needs
        checkpoint = load_checkpoint(cfg.checkpoint)
        saved_choices = dict(checkpoint.get("choices") or {})
        for override in OverridesParser.create().parse_overrides(overrides):
            key = override.key_or_group
            if key in SAVED_GROUPS and override.value() != saved_choices.get(key):
                raise ConfigError(
                    f"mode=eval takes {key} from the checkpoint; remove {key}={override.value()} (the checkpoint's "
                    f"is {key}={saved_choices.get(key)}; its keys can still be overridden, as {key}.KEY=VALUE)"
                )
        cfg = validate_config(cfg)
        choices = {**choices, **{k: v for k, v in saved_choices.items() if k in SAVED_GROUPS}}
        _prepare_dir(run_dir, resuming=False)
        parts = _build(cfg)
    path = checkpoint_file(cfg.checkpoint)
    _announce(run_dir, parts, choices, f"evaluating {path}")
    return _test(cfg, parts, path, run_dir, choices, {}, started, checkpoint)


def _announce(run_dir: Path, parts: Components, choices: dict[str, str], what: str) -> None:
    """Say where the run writes and what it runs on (stderr and metalearn.log, through Hydra's job logging)."""
    path = parts.learner.path("train") if hasattr(parts.learner, "path") else "one batched pass per episode"
    world = ranks.world_size()
    processes = f" x {world} processes (each takes its part of every meta-batch)" if world > 1 else ""
    log.info(f"run directory: {run_dir}")
    log.info(
        f"{what}: algorithm={choices.get('algorithm')} dataset={choices.get('dataset')} model={choices.get('model')}"
        f" on {parts.device}{processes}, tasks run by: {path}"
    )


def _prepare_dir(run_dir: Path, resuming: bool) -> None:
    if not ranks.is_primary():  # rank 0 checks and writes the run directory; the others only read from it
        return
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise RunDirError(
            f"cannot write to the output directory {run_dir}: {exc.strerror}; choose another with hydra.run.dir=PATH"
        ) from None
    check_run_dir(run_dir, resuming)


def check_run_dir(run_dir: Path, resuming: bool) -> None:
    """Refuse a run directory that is not this run's to write: a new run never writes over another run's outputs,
    mode=eval never writes into a training run's directory, and a finished run is not resumed. Reads only."""
    if resuming:
        if (run_dir / "results.json").exists():
            raise RunDirError(f"the run in {run_dir} has already finished (see its results.json); nothing to resume")
        return
    clashes = ("metrics.jsonl", "results.json", "checkpoints", FAILED_FILE)
    if any((run_dir / name).exists() for name in clashes):
        raise RunDirError(
            f"{run_dir} already holds a run's outputs; choose a new directory with hydra.run.dir=PATH "
            "(or continue a stopped training run with trainer.resume=true)"
        )


def _build(cfg: DictConfig) -> Components:
    """Seed everything, then build the device, data, sampler, backbone and learner from the config."""
    seed_everything(cfg.seed, cfg.device.deterministic)
    # of several processes on a machine, each takes its own GPU (the launcher's LOCAL_RANK) unless one is named
    index = cfg.device.index if cfg.device.index is not None or ranks.world_size() == 1 else ranks.local_rank()
    device = resolve_device(cfg.device.name, index)
    if cfg.device.precision == "fp16" and device.type != "cuda":
        raise ConfigError(
            f"device.precision=fp16 needs a CUDA GPU, and this run is on the {device.type} (where float16 is emulated, "
            "several times slower than float32); use device.precision=bf16"
        )
    if cfg.device.reuse_memory:
        reuse_freed_memory()
    data = build(cfg.dataset)
    sampler = build(cfg.sampler, data=data).to(device)
    backbone = build(cfg.model, input_shape=data.input_shape)
    # a pre-training head's classes default to the training split's (algorithm.train_classes=null)
    extra = {"train_classes": sampler.num_classes} if cfg.algorithm.get("train_classes", 0) is None else {}
    if data.task == "reinforcement":
        extra["family"] = data  # a policy's kind of actions and the family's own metric (regret) come from it
    # the output size: the classes of an episode, or the actions of a task family (sampler=tasks)
    learner = build(cfg.algorithm, backbone=backbone, task=data.task, n_way=sampler.n_way, **extra).to(device)
    steps = getattr(learner, "inner_steps", 1)
    if cfg.device.precision != "fp32" and getattr(learner, "second_order", False) and steps > 1:
        log.warning(
            f"device.precision={cfg.device.precision} with a second-order meta-gradient over {steps} inner steps: at 5 "
            "steps bf16's was measured further from float64's than the first-order gradient is (docs/performance.md); "
            "fp32 keeps the second-order term"
        )
    if cfg.device.compile:
        path = learner.path("train") if hasattr(learner, "path") else None  # None: one batched pass per episode
        compiled.prepare(learner, path, getattr(learner, "second_order", False), cfg.device.compile_backend)
    per_batch = getattr(sampler, "batch_size", None) or sampler.tasks_per_batch  # images, for pre-training
    if per_batch < ranks.world_size():
        what = "sampler.batch_size" if getattr(sampler, "batch_size", None) else "sampler.tasks_per_batch"
        raise ConfigError(
            f"{what}={per_batch} cannot be split over {ranks.world_size()} processes, each of which needs at least "
            f"one; raise {what} (the tasks of a meta-batch are what the processes share) or start fewer processes"
        )
    train_ways = sampler.train_shape.n_way if sampler.classification else sampler.n_way
    if train_ways != sampler.n_way and not getattr(learner, "any_ways", False):
        raise ConfigError(
            f"sampler.train_n_way={train_ways} differs from sampler.n_way={sampler.n_way}, but "
            f"{type(learner).__name__} has an output layer of n_way units that fixes its ways; remove "
            "sampler.train_n_way, or use a learner that takes the ways from each episode (protonet, matchingnet, "
            "relationnet, r2d2, metaoptnet, baseline, baseline++)"
        )
    return Components(device, data, sampler, learner)


def describe(result: Any, sampler: Any, split: str = "test") -> str:
    """The one summary line, e.g. `test accuracy 96.81% ± 0.31 (600 episodes, 5-way 1-shot)`; scores reported beside
    the metric (a return after each adaptation step) follow it."""
    line = f"{split} {result.metric} {result.describe()} ({result.episodes} {sampler.describe_shape()})"
    if result.others:
        line += "; " + ", ".join(f"{name} {s['mean']:.4g} ± {s['ci95']:.2g}" for name, s in result.others.items())
    return line


def _test(
    cfg: DictConfig,
    parts: Components,
    checkpoint_path: Path,
    run_dir: Path,
    choices: dict[str, str],
    summary: dict[str, Any],
    started: float,
    checkpoint: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Load the checkpoint into the learner, score it by `eval.protocol`, write and print the results."""
    checkpoint = checkpoint if checkpoint is not None else load_checkpoint(checkpoint_path)
    load_state_checked(parts.learner, checkpoint.get("learner"), checkpoint_path)
    if cfg.eval.protocol == "omniglot_runs":
        from metalearn.evaluation.omniglot_runs import evaluate_runs

        scored = evaluate_runs(cfg, parts.data, parts.device, checkpoint["learner"], checkpoint_path)
    else:
        sampler = parts.sampler
        result = evaluate(
            parts.learner, sampler, "test", progress=bool(cfg.trainer.progress), precision=cfg.device.precision
        )
        scored = {
            "metric": result.metric,
            "mean": result.mean,
            "ci95": result.ci95,
            "episodes": result.episodes,
            **({"others": result.others} if result.others else {}),
            "n_way": sampler.n_way if sampler.classification else None,
            "k_shot": sampler.k_shot,
            "q_query": sampler.q_query,
            "summary": describe(result, sampler),
        }
    summary_line = scored.pop("summary")
    results = {
        "mode": cfg.mode,
        **scored,
        "algorithm": choices.get("algorithm"),
        "dataset": choices.get("dataset"),
        "model": choices.get("model"),
        "device": str(parts.device),
        "seed": cfg.seed,
        "checkpoint": str(checkpoint_path),
        **summary,
        "wall_time_s": round(time.perf_counter() - started, 2),
        "summary": summary_line,
        "status": "finished",
        "run_dir": str(run_dir),
        "choices": dict(choices),
        "config": OmegaConf.to_container(cfg, resolve=True),  # the config this run used, validated
    }
    if not ranks.is_primary():  # every process scored its part; rank 0 writes and says the results
        return results
    atomic_write_json(results, run_dir / RESULTS_FILE)
    (run_dir / FAILED_FILE).unlink(missing_ok=True)  # a run that failed, then was resumed to the end
    say(results["summary"])
    log.info(f"results: {run_dir / RESULTS_FILE}")
    if cfg.mode == "train":
        log.info(f"best checkpoint: {checkpoint_path}")
    return results


def say(line: str) -> None:
    """Print a line to stdout. A reader that has gone (`metalearn ... | head -1`) loses the line, not the run: stdout
    then points at the null device, as Python's documentation advises for SIGPIPE."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
