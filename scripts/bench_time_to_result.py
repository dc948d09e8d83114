"""Time to a result, as ratios any host can compare: training iterations per second and evaluation episodes per
second for the default run and for ProtoNet and MAML on Omniglot, next to the fp32 matmul peak measured in the
same run.

Each setup is composed and validated exactly as `metalearn` would compose it from the same overrides, then
timed in this process: training iterations (data included) for `--seconds` after warm-up, split into drawing the
batch and the learner's step (with the step's GFLOP/s from torch's FLOP counter), and the evaluation of
`--episodes` fixed test episodes.

  python scripts/bench_time_to_result.py                                # the default run only
  python scripts/bench_time_to_result.py --omniglot-root PATH           # and ProtoNet / MAML on Omniglot
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_algorithms import count_flops, matmul_peak_gflops  # noqa: E402


def setups(omniglot_root: str | None) -> dict[str, list[str]]:
    rows = {"default run (glyphs, ProtoNet 5-way 1-shot)": []}
    if omniglot_root:
        data = ["dataset=omniglot", f"dataset.root={omniglot_root}"]
        rows["ProtoNet, Omniglot 5-way 1-shot"] = data
        rows["ProtoNet, Omniglot trained 60-way 1-shot, 5 queries"] = [
            *data,
            "sampler.train_n_way=60",
            "sampler.train_q_query=5",
        ]
        rows["MAML, Omniglot 5-way 1-shot, meta-batch 32"] = ["experiment=maml_omniglot_5w1s", *data]
    return rows


def measure(overrides: list[str], seconds: float, episodes: int) -> dict[str, float]:
    """One setup's training iterations per second, with the median milliseconds of drawing the batch and of the
    learner's step and the step's GFLOP/s, and its evaluation episodes per second."""
    from metalearn.cli import compose_config
    from metalearn.config.validate import validate_config
    from metalearn.run import _build
    from metalearn.training.evaluator import evaluate

    cfg = compose_config([*overrides, f"sampler.test_episodes={episodes}"])[0]
    validate_config(cfg)
    parts = _build(cfg)
    learner, sampler = parts.learner, parts.sampler
    optimizer = torch.optim.Adam(learner.parameters(), lr=1e-3)
    learner.train()

    def iteration(i: int) -> tuple[float, float]:
        if hasattr(learner, "set_progress"):
            learner.set_progress(i, 1000)
        start = time.perf_counter()
        batch = sampler.train_batch()
        drawn = time.perf_counter()
        learner.outer_update(learner.meta_loss(batch), optimizer, None)
        return drawn - start, time.perf_counter() - drawn

    for i in range(2):  # warm-up: allocator, kernels' first calls
        iteration(i + 1)
    draws, steps, start = [], [], time.perf_counter()
    while time.perf_counter() - start < seconds:
        draw, step = iteration(len(steps) + 3)
        draws.append(draw)
        steps.append(step)
    train_rate = len(steps) / (time.perf_counter() - start)
    start = time.perf_counter()
    evaluate(learner, sampler, "test")
    eval_rate = episodes / (time.perf_counter() - start)
    counter = count_flops(learner, lambda: iteration(len(steps) + 3))
    step_s = statistics.median(steps)
    return {
        "it/s": train_rate,
        "batch ms": 1e3 * statistics.median(draws),
        "step ms": 1e3 * step_s,
        "step GFLOP/s": counter.get_total_flops() / 1e9 / step_s,
        "episodes/s": eval_rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--omniglot-root", help="the folder holding Omniglot (as dataset.root)")
    parser.add_argument("--seconds", type=float, default=20.0, help="training time per setup")
    parser.add_argument("--episodes", type=int, default=200, help="test episodes evaluated per setup")
    args = parser.parse_args()
    peak_before = matmul_peak_gflops(torch.device("cpu"))
    results = {
        name: measure(overrides, args.seconds, args.episodes) for name, overrides in setups(args.omniglot_root).items()
    }
    peak_after = matmul_peak_gflops(torch.device("cpu"))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; fp32 matmul peak {peak_before:.0f} GFLOP/s "
        f"before, {peak_after:.0f} after"
    )
    print(
        "| setup | training it/s | drawing the batch, ms/it | learner step, ms/it | step GFLOP/s (% of peak) | "
        "evaluation episodes/s |\n|---|---:|---:|---:|---:|---:|"
    )
    peak = max(peak_before, peak_after)
    for name, r in results.items():
        print(
            f"| {name} | {r['it/s']:.2f} | {r['batch ms']:.1f} | {r['step ms']:.1f} | "
            f"{r['step GFLOP/s']:.0f} ({100 * r['step GFLOP/s'] / peak:.0f}%) | {r['episodes/s']:.1f} |"
        )


if __name__ == "__main__":
    main()
