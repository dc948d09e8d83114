"""One run: validate the config, build data -> sampler -> model -> learner, train and/or evaluate, write outputs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from metalearn.build import build
from metalearn.config import validate_config
from metalearn.config.compat import upgrade_saved_config
from metalearn.device import resolve_device, reuse_freed_memory
from metalearn.errors import ConfigError, MetalearnError
from metalearn.files import atomic_write_json
from metalearn.seeding import seed_everything
from metalearn.training.checkpoint import load_checkpoint, load_state_checked
from metalearn.training.evaluator import evaluate
from metalearn.training.resume import find_resume_source, resumed_config

# Groups that define what a checkpoint holds; in mode=eval they come from the checkpoint.
SAVED_GROUPS = ("dataset", "sampler", "algorithm", "model")


def eval_config(cfg: DictConfig, overrides: list[str], saved_yaml: str, saved_choices: dict[str, str]) -> DictConfig:
    """The checkpoint's config, with this command's device/trainer and its explicit key overrides on top.

    Naming a saved group's option is allowed only when it is the checkpoint's own (the command line adds
    those itself, see cli._eval_argv, so that `algorithm.eval_inner_steps=10` reaches MAML's keys); any
    other option is refused.
    """
    saved = upgrade_saved_config(OmegaConf.create(saved_yaml))
    merged = OmegaConf.merge(
        saved,
        {"device": cfg.device, "trainer": cfg.trainer, "eval": cfg.eval, "mode": "eval", "checkpoint": cfg.checkpoint},
    )
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group
        if key in SAVED_GROUPS:
            if override.value() != saved_choices.get(key):
                raise ConfigError(
                    f"mode=eval takes {key} from the checkpoint; remove {key}={override.value()} "
                    f"(the checkpoint's is {key}={saved_choices.get(key)}; its keys can still be overridden, as "
                    f"{key}.KEY=VALUE)"
                )
            continue
        if key.split(".")[0] in SAVED_GROUPS or key == "seed":
            OmegaConf.update(merged, key, override.value(), force_add=False)
    return merged  # type: ignore[return-value]


def _prepare_dir(run_dir: Path, mode: str, resuming: bool = False) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise MetalearnError(
            f"cannot write to the output directory {run_dir}: {exc.strerror}; choose another with hydra.run.dir=PATH"
        ) from None
    if resuming:
        if (run_dir / "results.json").exists():
            raise MetalearnError(f"the run in {run_dir} has already finished (see its results.json); nothing to resume")
        return
    # A new run never writes over another run's outputs; mode=eval never writes into a training run's directory.
    clashes = ("metrics.jsonl", "results.json", "checkpoints")
    if any((run_dir / name).exists() for name in clashes):
        raise MetalearnError(
            f"{run_dir} already holds a run's outputs; choose a new directory with hydra.run.dir=PATH "
            "(or continue a stopped training run with trainer.resume=true)"
        )


def describe(result: Any, sampler: Any, split: str = "test") -> str:
    """The one summary line, e.g. `test accuracy 96.81% ± 0.31 (600 episodes, 5-way 1-shot)`."""
    shots = f"{sampler.n_way}-way {sampler.k_shot}-shot" if sampler.classification else f"{sampler.k_shot}-shot"
    return f"{split} {result.metric} {result.describe()} ({result.episodes} episodes, {shots})"


def run(cfg: DictConfig, run_dir: Path, overrides: list[str], choices: dict[str, str]) -> dict[str, Any]:
    """Execute one run in `run_dir` and return what was written to results.json."""
    started = time.perf_counter()
    validate_config(cfg, skip=SAVED_GROUPS if cfg.get("mode") == "eval" else ())
    checkpoint = None
    if cfg.mode == "eval":
        checkpoint = load_checkpoint(cfg.checkpoint)
        cfg = eval_config(cfg, overrides, checkpoint["config"], dict(checkpoint.get("choices", {})))
        validate_config(cfg)
        choices = {**choices, **{k: v for k, v in checkpoint.get("choices", {}).items() if k in SAVED_GROUPS}}
    resume_path, resume_blob, resuming = (
        None,
        None,
        cfg.mode == "train" and bool(cfg.trainer.get("resume") or cfg.get("resume")),
    )
    if resuming:
        resume_path, resume_blob = find_resume_source(cfg, Path(run_dir))
        cfg, choices = resumed_config(cfg, overrides, choices, Path(run_dir), resume_blob, resume_path or Path(run_dir))
        validate_config(cfg)
    _prepare_dir(run_dir, cfg.mode, resuming)

    seed_everything(cfg.seed, cfg.device.deterministic)
    device = resolve_device(cfg.device.name, cfg.device.index)
    if cfg.device.reuse_memory:
        reuse_freed_memory()
    data = build(cfg.dataset)
    sampler = build(cfg.sampler, data=data).to(device)
    backbone = build(cfg.model, input_shape=data.input_shape)
    learner = build(cfg.algorithm, backbone=backbone, task=data.task, n_way=cfg.sampler.n_way).to(device)
    trainer = build(cfg.trainer)

    summary: dict[str, Any] = {}
    if cfg.mode == "train":
        config_yaml = OmegaConf.to_yaml(cfg, resolve=True)
        fit = trainer.fit(
            learner, sampler, run_dir, config_yaml, choices, resume_from=resume_blob, resume_path=resume_path
        )
        checkpoint_path = run_dir / "checkpoints" / "best.pt"
        checkpoint = load_checkpoint(checkpoint_path)
        summary = {
            "iterations": fit.iterations,
            "best_iteration": fit.best_iteration,
            f"best_val_{fit.metric}": fit.best_val,
        }
    else:
        checkpoint_path = Path(cfg.checkpoint)
    assert checkpoint is not None
    load_state_checked(learner, checkpoint.get("learner"), checkpoint_path)

    if cfg.eval.protocol == "omniglot_runs":
        from metalearn.evaluation.omniglot_runs import evaluate_runs

        scored = evaluate_runs(cfg, data, device, checkpoint["learner"], checkpoint_path)
    else:
        result = evaluate(learner, sampler, "test", progress=bool(cfg.trainer.progress))
        scored = {
            "metric": result.metric,
            "mean": result.mean,
            "ci95": result.ci95,
            "episodes": result.episodes,
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
        "device": str(device),
        "seed": cfg.seed,
        "checkpoint": str(checkpoint_path),
        **summary,
        "wall_time_s": round(time.perf_counter() - started, 2),
        "summary": summary_line,
    }
    atomic_write_json(results, run_dir / "results.json")
    print(results["summary"], flush=True)
    return results
