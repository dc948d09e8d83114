"""vmap vs loop at meta-batch 32 on CUDA, for MAML and FOMAML (Conv4-64, 5-way 1-shot, 15 queries, 28x28x1).

Self-contained and short (well under 3 minutes on a recent GPU): random images stand in for Omniglot,
since only the shapes matter for speed. Prints the card, the median time per meta-iteration (forward,
backward and Adam step) of each path and the loop/vmap ratio.

  python scripts/bench_gpu_batching.py [--tasks 32] [--iterations 10] [--inner-steps 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from metalearn.algorithms.maml import MAML
from metalearn.episode import EpisodeBatch
from metalearn.models.conv4 import Conv4


def random_batch(tasks: int, device: torch.device) -> EpisodeBatch:
    labels = torch.arange(5, device=device)
    return EpisodeBatch(
        torch.rand(tasks, 5, 1, 28, 28, device=device),
        labels.repeat(tasks, 1),
        torch.rand(tasks, 75, 1, 28, 28, device=device),
        labels.repeat_interleave(15).repeat(tasks, 1),
    )


def time_path(first_order: bool, batching: str, args: argparse.Namespace, device: torch.device) -> float:
    torch.manual_seed(0)
    learner = MAML(
        Conv4((1, 28, 28)),
        "classification",
        5,
        inner_steps=args.inner_steps,
        first_order=first_order,
        batching=batching,
    ).to(device)
    optimizer = torch.optim.Adam(learner.parameters(), lr=1e-3)
    batch = random_batch(args.tasks, device)
    times = []
    for i in range(args.warmup + args.iterations):
        torch.cuda.synchronize()
        start = time.perf_counter()
        learner.outer_update(learner.meta_loss(batch), optimizer, None)
        torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--inner-steps", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_gpu_batching.py needs a CUDA GPU (torch.cuda.is_available() is False)")
    device = torch.device("cuda")
    print(
        f"card: {torch.cuda.get_device_name(device)}; torch {torch.__version__}; meta-batch {args.tasks}, "
        f"{args.inner_steps} inner step(s), Conv4-64, 5-way 1-shot, 15 queries, 28x28x1"
    )
    for name, first_order in (("MAML", False), ("FOMAML", True)):
        loop = time_path(first_order, "loop", args, device)
        vmap = time_path(first_order, "vmap", args, device)
        print(
            f"{name:7s} loop {loop * 1000:8.1f} ms/it   vmap {vmap * 1000:8.1f} ms/it   loop/vmap {loop / vmap:5.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
