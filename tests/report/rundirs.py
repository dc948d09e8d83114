"""Run and sweep directories written by hand, laid out as metalearn and Hydra write them (no training): what
`metalearn report` reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
OPTUNA_SWEEPER = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"

# the 2 algorithms x 4 seeds sweep of `sweep_dir`: job number -> (algorithm, seed, test mean); job 3 failed,
# job 7 never finished
SWEEP = {
    0: ("maml", 0, 0.80),
    1: ("maml", 1, 0.82),
    2: ("maml", 2, 0.84),
    3: ("maml", 3, None),
    4: ("protonet", 0, 0.70),
    5: ("protonet", 1, 0.75),
    6: ("protonet", 2, 0.71),
    7: ("protonet", 3, None),
}
EPISODE_CI95 = {0: 0.03, 1: 0.031, 2: 0.032, 4: 0.04, 5: 0.041, 6: 0.042}
WALL_TIME = {0: 10.0, 1: 11.0, 2: 12.0, 4: 3.0, 5: 4.0, 6: 5.0}
ALGORITHMS = {
    "maml": {"_target_": "metalearn.algorithms.maml.MAML", "inner_lr": 0.4, "inner_steps": 1},
    "protonet": {"_target_": "metalearn.algorithms.protonet.ProtoNet", "batch_norm": "running"},
}


def config(algorithm: str, seed: int, cache_dir: str = "/tmp/cache", **sampler: Any) -> dict[str, Any]:
    """A composed config as Hydra saves it in .hydra/config.yaml (sampler.seed is an interpolation there)."""
    return {
        "mode": "train",
        "seed": seed,
        "checkpoint": None,
        "resume": None,
        "dataset": {
            "_target_": "metalearn.data.glyphs.load_glyphs",
            "image_size": 28,
            "seed": 0,
            "cache_dir": cache_dir,
        },
        "sampler": {"n_way": 5, "k_shot": 1, "q_query": 15, "seed": "${seed}", **sampler},
        "algorithm": dict(ALGORITHMS[algorithm]),
        "model": {"_target_": "metalearn.models.conv4.Conv4", "hidden_channels": 64},
        "device": {"name": "cpu", "deterministic": False},
        "trainer": {"iterations": 10, "lr": 0.001, "progress": False, "resume": False},
    }


def choices(algorithm: str) -> dict[str, Any]:
    return {
        "algorithm": algorithm,
        "dataset": "glyphs",
        "model": "conv4",
        "sampler": "episodic",
        "device": "cpu",
        "trainer": "default",
        "experiment": None,
        "hydra/launcher": "basic",
    }


def write_run(
    run_dir: Path,
    cfg: dict[str, Any],
    overrides: list[str],
    chosen: dict[str, Any],
    *,
    mean: float | None = None,
    metric: str = "accuracy",
    ci95: float = 0.03,
    wall_time_s: float = 2.0,
    curve: list[float] = (),
    failed: dict[str, Any] | None = None,
    saved_config: bool = True,
) -> Path:
    """One run directory: .hydra/ always; metrics.jsonl with a validation row every 5 iterations of `curve`;
    results.json when `mean` is given (with the resolved config and choices if `saved_config`), failed.json
    when `failed` is."""
    hydra_dir = run_dir / ".hydra"
    hydra_dir.mkdir(parents=True)
    (hydra_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    (hydra_dir / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    hydra = {"hydra": {"run": {"dir": "${metalearn.run_dir:${resume},outputs}"}, "runtime": {"choices": chosen}}}
    (hydra_dir / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    rows = [
        {
            "iteration": 5 * (i + 1),
            "train_loss": 1.0,
            f"val_{metric}": v,
            f"val_{metric}_ci95": 0.05,
            "elapsed_s": 0.5 * (i + 1),
        }
        for i, v in enumerate(curve)
    ]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    if mean is not None:
        resolved = json.loads(json.dumps(cfg).replace('"${seed}"', str(cfg["seed"])))
        results = {
            "mode": "train",
            "metric": metric,
            "mean": mean,
            "ci95": ci95,
            "episodes": 20,
            "algorithm": chosen.get("algorithm"),
            "dataset": chosen.get("dataset"),
            "model": chosen.get("model"),
            "seed": cfg["seed"],
            "iterations": cfg["trainer"]["iterations"],
            "wall_time_s": wall_time_s,
            "status": "finished",
        }
        if saved_config:
            results["config"], results["choices"] = resolved, chosen
        (run_dir / "results.json").write_text(json.dumps(results))
    if failed is not None:
        (run_dir / "failed.json").write_text(json.dumps(failed))
    return run_dir


def write_sweep(sweep: Path, task: list[str], sweeper: str = BASIC_SWEEPER, **sweeper_keys: Any) -> Path:
    sweep.mkdir(parents=True, exist_ok=True)
    multirun = {
        "hydra": {
            "sweep": {"dir": str(sweep), "subdir": "${hydra.job.num}"},
            "sweeper": {"_target_": sweeper, **sweeper_keys},
            "overrides": {"hydra": ["hydra.mode=MULTIRUN"], "task": task},
        },
        "seed": 0,
    }
    (sweep / "multirun.yaml").write_text(yaml.safe_dump(multirun))
    return sweep


def write_algorithm_sweep(sweep: Path) -> Path:
    """`metalearn -m device=cpu algorithm=maml,protonet seed=0,1,2,3`: 6 finished jobs, job 3 failed, job 7
    stopped without results. The maml jobs write results.json with their config (the current format); the protonet
    jobs without (the older one: config from .hydra/)."""
    write_sweep(sweep, ["device=cpu", "algorithm=maml,protonet", "seed=0,1,2,3"])
    for job, (algorithm, seed, mean) in SWEEP.items():
        overrides = ["device=cpu", f"algorithm={algorithm}", f"seed={seed}"]
        # the validation curve ends at the test mean, so that the curves' last points are known too
        curve = [mean - 0.1, mean] if mean is not None else [0.5]
        failed = None
        if job == 3:
            failed = {"status": "failed", "error": "inner_lr must be positive\nsecond line", "exit_code": 2}
            failed["overrides"] = overrides
        write_run(
            sweep / str(job),
            config(algorithm, seed),
            overrides,
            choices(algorithm),
            mean=mean,
            ci95=EPISODE_CI95.get(job, 0.0),
            wall_time_s=WALL_TIME.get(job, 0.0),
            curve=curve,
            failed=failed,
            saved_config=algorithm == "maml",
        )
    return sweep
