"""Evaluation speed of the gradient-based learners on each execution path, against the sequential reference.

For Reptile and MAML (Omniglot 5-way 1-shot as the experiment configs set them up, or the default glyphs data
without --omniglot-root), evaluates `--episodes` fixed test episodes with an untrained learner on each path:

  sequential  the loop with one intra-op thread: one episode after another, each on one core
  loop        the loop with torch's intra-op threads (every operation split across the cores)
  threads     whole episodes side by side on worker threads, one intra-op thread each (`auto` on a multi-core CPU)
  vmap        torch.func.vmap over each chunk of episodes (`auto` on CUDA)

and prints episodes per second, the GFLOP/s of the evaluation (FLOPs from torch's FLOP counter on one episode), the
fp32 matmul peak measured before and after, and whether the mean and 95% interval equal the sequential ones bit for
bit (the threads path is built to; the others round differently).

  python scripts/bench_evaluation.py --omniglot-root PATH --episodes 600
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_algorithms import count_flops, matmul_peak_gflops  # noqa: E402

PATHS = {"sequential": ("loop", 1), "loop": ("loop", None), "threads": ("threads", None), "vmap": ("vmap", None)}


def setups(omniglot_root: str | None) -> dict[str, list[str]]:
    if omniglot_root:
        data = [f"dataset.root={omniglot_root}"]
        return {
            "Reptile, Omniglot 5-way 1-shot, 50 fine-tuning steps": ["experiment=reptile_omniglot_5w1s", *data],
            "MAML, Omniglot 5-way 1-shot, 3 inner steps": ["experiment=maml_omniglot_5w1s", *data],
        }
    return {"Reptile, glyphs 5-way 1-shot": ["algorithm=reptile"], "MAML, glyphs 5-way 1-shot": ["algorithm=maml"]}


def measure(overrides: list[str], path: str, threads: int | None, episodes: int) -> dict:
    from metalearn.cli import compose_config
    from metalearn.config.validate import validate_config
    from metalearn.episode import EpisodeBatch
    from metalearn.run import _build
    from metalearn.training.evaluator import evaluate

    cfg = compose_config([*overrides, f"algorithm.batching={path}", f"sampler.test_episodes={episodes}"])[0]
    validate_config(cfg)
    parts = _build(cfg)  # seeded from cfg.seed: every path starts from the same untrained learner
    learner, sampler = parts.learner, parts.sampler
    default_threads = torch.get_num_threads()
    torch.set_num_threads(threads or default_threads)
    try:
        start = time.perf_counter()
        result = evaluate(learner, sampler, "test")
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(default_threads)
    episode = next(sampler.eval_batches("test")).episodes()[0]
    learner.eval()
    with torch.no_grad():
        flops = count_flops(learner, lambda: learner.predict_batch(EpisodeBatch.of(episode))).get_total_flops()
    return {"episodes/s": episodes / seconds, "GFLOP/s": flops * episodes / seconds / 1e9, "result": result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--omniglot-root", help="the folder holding Omniglot (as dataset.root)")
    parser.add_argument("--episodes", type=int, default=600, help="test episodes evaluated per path")
    parser.add_argument("--paths", default="sequential,loop,threads,vmap", help=f"a comma list of {', '.join(PATHS)}")
    args = parser.parse_args()
    paths = args.paths.split(",")
    unknown = [p for p in paths if p not in PATHS]
    if unknown:
        parser.error(f"unknown path(s) {', '.join(unknown)}: choose from {', '.join(PATHS)}")
    peak_before = matmul_peak_gflops(torch.device("cpu"))
    rows = []
    for name, overrides in setups(args.omniglot_root).items():
        for label in paths:
            rows.append((name, label, measure(overrides, *PATHS[label], args.episodes)))
            print(f"  {name}, {label}: {rows[-1][2]['episodes/s']:.2f} episodes/s", file=sys.stderr, flush=True)
    peak_after = matmul_peak_gflops(torch.device("cpu"))
    peak = max(peak_before, peak_after)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.episodes} test episodes; fp32 matmul "
        f"peak {peak_before:.0f} GFLOP/s before, {peak_after:.0f} after"
    )
    print(
        "| learner | path | episodes/s | GFLOP/s (% of peak) | accuracy | same bits as sequential |\n"
        "|---|---|---:|---:|---|---|"
    )
    sequential = {name: r["result"] for name, label, r in rows if label == "sequential"}
    for name, label, r in rows:
        res = r["result"]
        same = "" if name not in sequential else ("yes" if res == sequential[name] else "no")
        print(
            f"| {name} | {label} | {r['episodes/s']:.2f} | {r['GFLOP/s']:.0f} ({100 * r['GFLOP/s'] / peak:.0f}%) | "
            f"{res.describe()} | {same} |"
        )


if __name__ == "__main__":
    main()
