"""Meta-RL speed: environment steps per second of the vectorised navigation2d and bandits (and of Meta-World ML1
in a gymnasium vector env, with --metaworld), and the time of a MAML-TRPO meta-iteration of the navigation
experiment (20 tasks x 20 trajectories x 100 steps) split into its parts, next to the fp32 matmul peak measured in
the same run.

  python scripts/bench_rl.py                       # batching=auto (vmap for the MLP policy)
  python scripts/bench_rl.py --batching loop --iterations 3
  python scripts/bench_rl.py --metaworld           # needs pip install "metalearn[metaworld]"
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


def env_steps_per_second(env: object, tasks: int, trajectories: int, repeats: int = 5) -> float:
    """Steps of tasks x trajectories agents (one horizon each) per second, random actions, no policy."""
    gen = torch.Generator().manual_seed(0)
    goals = env.sample_tasks(tasks, gen)
    noise = torch.randn(env.horizon, tasks, trajectories, env.action_dim, generator=gen)
    if getattr(env, "actions", "continuous") == "discrete":
        actions = torch.nn.functional.one_hot(noise.argmax(-1), env.action_dim).float()
    else:
        actions = noise.clamp(-1, 1) * 0.1
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        state, done = env.reset(goals, trajectories, torch.arange(tasks))
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
    parser.add_argument("--metaworld", action="store_true", help="also step Meta-World ML1 reach-v3 (CPU, MuJoCo)")
    args = parser.parse_args()
    from metalearn.data.bandit import Bandit
    from metalearn.data.navigation import Navigation2D

    peak_before = matmul_peak_gflops(torch.device("cpu"))
    steps = {}
    for tasks, trajectories in ((20, 20), (100, 100)):
        steps[f"navigation2d, {tasks} tasks x {trajectories} trajectories"] = env_steps_per_second(
            Navigation2D(), tasks, trajectories
        )
    steps["bandit (5 arms, 10 pulls), 20 tasks x 10 trajectories"] = env_steps_per_second(Bandit(), 20, 10)
    if args.metaworld:
        from metalearn.data.gym_family import GymTaskFamily

        family = GymTaskFamily("metalearn.data.metaworld_family:ml1", horizon=100)
        steps["metaworld_ml1 reach-v3 (gymnasium SyncVectorEnv), 4 tasks x 5 trajectories"] = env_steps_per_second(
            family, 4, 5, repeats=2
        )
    parts = meta_iteration(args.batching, args.iterations)
    peak_after = matmul_peak_gflops(torch.device("cpu"))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batching={args.batching}; fp32 matmul peak "
        f"{peak_before:.0f} GFLOP/s before, {peak_after:.0f} after"
    )
    print("| what | figure |\n|---|---:|")
    for name, rate in steps.items():
        print(f"| {name}, random actions | {rate:,.0f} steps/s |")
    for name, seconds in parts.items():
        print(f"| MAML-TRPO navigation experiment, {name} | {seconds:.2f} s |")


if __name__ == "__main__":
    main()
