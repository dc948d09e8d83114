"""Meta-RL speed: environment steps per second of the vectorised navigation2d, and the time of a MAML-TRPO
meta-iteration of the navigation experiment (20 tasks x 20 trajectories x 100 steps) split into its parts, next to
the fp32 matmul peak measured in the same run.

  python scripts/bench_rl.py                       # batching=auto (vmap for the MLP policy)
  python scripts/bench_rl.py --batching loop --iterations 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_algorithms import matmul_peak_gflops  # noqa: E402


def env_steps_per_second(tasks: int, trajectories: int, repeats: int = 5) -> float:
    """Steps of tasks x trajectories agents (one horizon each) per second, random actions, no policy."""
    from metalearn.data.navigation import Navigation2D

    env = Navigation2D()
    gen = torch.Generator().manual_seed(0)
    goals = env.sample_tasks(tasks, gen)
    actions = torch.randn(env.horizon, tasks, trajectories, 2, generator=gen) * 0.1
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        state, done = env.reset(goals, trajectories)
        for t in range(env.horizon):
            state, _, done = env.step(state, actions[t], goals, done)
        best = min(best, time.perf_counter() - start)
    return tasks * trajectories * env.horizon / best


def meta_iteration(batching: str, iterations: int) -> dict[str, float]:
    """Median seconds of the parts of a MAML-TRPO meta-iteration of the navigation experiment's shape."""
    from metalearn.algorithms.maml_trpo import MAMLTRPO
    from metalearn.cli import compose_config
    from metalearn.config.validate import validate_config
    from metalearn.run import _build

    cfg = compose_config(["experiment=maml_trpo_navigation2d", f"algorithm.batching={batching}"])[0]
    validate_config(cfg)
    parts = _build(cfg)
    learner, sampler = parts.learner, parts.sampler
    assert isinstance(learner, MAMLTRPO)
    times: dict[str, list[float]] = {"one rollout (400 trajectories)": [], "meta_loss": [], "TRPO step": []}
    for i in range(iterations + 1):
        batch = sampler.train_batch()
        start = time.perf_counter()
        with torch.no_grad():
            theta = learner._stacked(learner.theta(detach=True), len(batch))
            learner._rollout(batch, theta, 0)
        rolled = time.perf_counter()
        out = learner.meta_loss(batch)
        collected = time.perf_counter()
        learner.outer_update(out, None, None)  # type: ignore[arg-type]
        done = time.perf_counter()
        if i > 0:  # the first is warm-up
            times["one rollout (400 trajectories)"].append(rolled - start)
            times["meta_loss"].append(collected - rolled)
            times["TRPO step"].append(done - collected)
    medians = {k: statistics.median(v) for k, v in times.items()}
    medians["meta-iteration (meta_loss + TRPO step)"] = medians["meta_loss"] + medians["TRPO step"]
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batching", default="auto", choices=("auto", "vmap", "loop", "threads"))
    parser.add_argument("--iterations", type=int, default=5, help="timed meta-iterations (after one warm-up)")
    args = parser.parse_args()
    peak_before = matmul_peak_gflops(torch.device("cpu"))
    steps = {shape: env_steps_per_second(*shape) for shape in ((20, 20), (100, 100))}
    parts = meta_iteration(args.batching, args.iterations)
    peak_after = matmul_peak_gflops(torch.device("cpu"))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batching={args.batching}; fp32 matmul peak "
        f"{peak_before:.0f} GFLOP/s before, {peak_after:.0f} after"
    )
    print("| what | figure |\n|---|---:|")
    for (tasks, trajectories), rate in steps.items():
        print(f"| navigation2d, {tasks} tasks x {trajectories} trajectories, random actions | {rate:,.0f} steps/s |")
    for name, seconds in parts.items():
        print(f"| MAML-TRPO navigation experiment, {name} | {seconds:.2f} s |")


if __name__ == "__main__":
    main()
