"""Benchmark the gradient-based family on the Omniglot shape.

Per algorithm: median meta-iteration time with the data included (sampler.train_batch inside the timed
loop), tasks per second, peak memory, the model FLOPs of one meta-iteration (torch.utils.flop_counter)
and the achieved GFLOP/s next to this machine's fp32 matmul peak measured in the same run, and the
minor page faults per iteration (memory the OS had to map in again). Defaults:
5-way 1-shot, 15 queries, 28x28x1 glyphs, Conv4-64, meta-batch 32, 1 inner step. As in `metalearn`, the
model's memory_format is `auto` (channels-last on CPU) and freed memory is kept for reuse
(device.reuse_memory); --memory-format and --no-reuse-memory measure the alternatives.

Each measurement runs in a fresh subprocess, so peak memory is that run's alone: on CPU the peak
resident set size (getrusage ru_maxrss) minus the resident size before the first iteration, i.e. the
extra memory the meta-iterations needed; on CUDA torch.cuda.max_memory_allocated.

  python scripts/bench_algorithms.py                      # every algorithm, batching=auto (threads on CPU)
  python scripts/bench_algorithms.py --batching loop      # the single-stream reference path
  python scripts/bench_algorithms.py --algorithms maml,fomaml --batching vmap
  python scripts/bench_algorithms.py --memory-sweep       # MAML 1/5/10 steps, with and without checkpoint_inner
  python scripts/bench_algorithms.py --algorithms maml --memory-format contiguous --no-reuse-memory   # as before both
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
ALGORITHMS = ("maml", "fomaml", "maml++", "anil", "metasgd", "reptile")


def matmul_peak_gflops(device: torch.device, size: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    a @ b
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def count_flops(learner, step) -> FlopCounterMode:
    """torch's FLOP counter over one call of `step`, with the learner's tasks on the loop path: the counter sees only
    this thread's operations, and the loop does the same work as threads or vmap."""
    batching = getattr(learner, "batching", None)
    if batching is not None:
        learner.batching = "loop"
    try:
        with FlopCounterMode(display=False) as counter:
            step()
    finally:
        if batching is not None:
            learner.batching = batching
    return counter


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def build_learner(name: str, overrides: dict, data, n_way: int, memory_format: str = "auto"):
    from metalearn.build import build
    from metalearn.cli import compose_config
    from metalearn.models.conv4 import Conv4

    node = compose_config([f"algorithm={name}"])[0].algorithm
    for key, value in overrides.items():
        if key in node:
            node[key] = value
    backbone = Conv4(data.input_shape, hidden_channels=64, memory_format=memory_format)
    return build(node, backbone=backbone, task=data.task, n_way=n_way)


def measure(spec: dict) -> dict:
    """One configuration, in this process: returns the figures as a dict."""
    from metalearn.data.glyphs import load_glyphs
    from metalearn.device import reuse_freed_memory
    from metalearn.sampling.sampler import EpisodeSampler

    if spec["reuse_memory"]:
        reuse_freed_memory()
    torch.manual_seed(0)
    device = torch.device(spec["device"])
    data = load_glyphs(train_classes=200, val_classes=10, test_classes=10)
    sampler = EpisodeSampler(data, n_way=spec["n_way"], k_shot=1, q_query=15, tasks_per_batch=spec["tasks"]).to(device)
    overrides = {
        "inner_steps": spec["inner_steps"],
        "batching": spec["batching"],
        "checkpoint_inner": spec["checkpoint_inner"],
    }
    if spec["algorithm"] == "maml++":
        overrides["multi_step_loss_iterations"] = 10
        overrides["first_order_iterations"] = 0  # time the second-order phase
    learner = build_learner(spec["algorithm"], overrides, data, spec["n_way"], spec["memory_format"]).to(device)
    optimizer = torch.optim.Adam(learner.parameters(), lr=1e-3)
    learner.train()

    def iteration(i: int) -> None:
        learner.set_progress(i, 1000)
        out = learner.meta_loss(sampler.train_batch())
        learner.outer_update(out, optimizer, None)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times, faults = [], 0
    for i in range(1, spec["warmup"] + spec["iterations"] + 1):
        sync(device)
        faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        iteration(i)
        sync(device)
        if i > spec["warmup"]:
            times.append(time.perf_counter() - start)
            faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    batch = sampler.train_batch()

    def forward_backward() -> None:
        out = learner.meta_loss(batch)
        if out.loss.requires_grad:
            out.loss.backward()

    counter = count_flops(learner, forward_backward)
    median = statistics.median(times)
    gflop = counter.get_total_flops() / 1e9
    return {
        **spec,
        "median_s": median,
        "tasks_per_s": spec["tasks"] / median,
        "peak_mb": peak_mb,
        "page_faults": faults / len(times),
        "gflop": gflop,
        "gflops_per_s": gflop / median,
        "matmul_peak_gflops": matmul_peak_gflops(device),
        "threads": torch.get_num_threads(),
    }


def run_one(spec: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--one", json.dumps(spec)], capture_output=True, text=True, cwd=ROOT
    )
    if proc.returncode != 0:
        return {
            **spec,
            "error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}",
        }
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
    parser.add_argument("--batching", default="auto", choices=("auto", "loop", "threads", "vmap"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--n-way", type=int, default=5)
    parser.add_argument("--inner-steps", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=5, help="timed meta-iterations (median reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument(
        "--memory-sweep", action="store_true", help="MAML 1/5/10 inner steps, with/without checkpoint_inner"
    )
    parser.add_argument("--memory-format", default="auto", choices=("auto", "channels_last", "contiguous"))
    parser.add_argument("--no-reuse-memory", action="store_true", help="leave glibc's malloc settings as they are")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(json.loads(args.one))))
        return
    base = {
        "device": args.device,
        "tasks": args.tasks,
        "n_way": args.n_way,
        "batching": args.batching,
        "iterations": args.iterations,
        "warmup": args.warmup,
        "inner_steps": args.inner_steps,
        "checkpoint_inner": False,
        "memory_format": args.memory_format,
        "reuse_memory": not args.no_reuse_memory,
    }
    if args.memory_sweep:
        specs = [
            {**base, "algorithm": "maml", "batching": "loop", "inner_steps": s, "checkpoint_inner": c}
            for s in (1, 5, 10)
            for c in (False, True)
        ]
    else:
        specs = [{**base, "algorithm": a} for a in args.algorithms.split(",")]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}; "
        f"{args.n_way}-way 1-shot, 15 queries, 28x28x1, Conv4-64, meta-batch {args.tasks}; "
        f"memory_format={args.memory_format}, reuse_memory={not args.no_reuse_memory}"
    )
    print(
        "| algorithm | batching | inner steps | checkpoint_inner | median s/it (data incl.) | tasks/s | peak MB | "
        "page faults/it | GFLOP/it | GFLOP/s | matmul peak GFLOP/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for spec in specs:
        r = run_one(spec)
        if "error" in r:
            print(
                f"| {spec['algorithm']} | {spec['batching']} | {spec['inner_steps']} | "
                f"{spec['checkpoint_inner']} | error: {r['error']} |"
            )
            continue
        print(
            f"| {r['algorithm']} | {r['batching']} | {r['inner_steps']} | {r['checkpoint_inner']} | "
            f"{r['median_s']:.2f} | "
            f"{r['tasks_per_s']:.1f} | {r['peak_mb']:.0f} | {r['page_faults']:.0f} | {r['gflop']:.0f} | "
            f"{r['gflops_per_s']:.0f} | {r['matmul_peak_gflops']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
