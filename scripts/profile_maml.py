"""Where a MAML meta-iteration's time goes on the CPU: torch.profiler by operator, each operator's self time
next to its FLOPs, against the fp32 matmul peak measured in the same run.

One second-order MAML meta-iteration on the Omniglot shape (5-way 1-shot, 15 queries, 28x28x1, Conv4-64,
meta-batch 32, one inner step), data included, after warm-up iterations. The tasks run on the reference loop
(`--batching loop`, torch's intra-op threads inside each operator), so every operator is seen by the profiler on
one stream. The profiler does not see the worker threads of `--batching threads` (the path `auto` takes on a
multi-core CPU); `--batching worker` profiles what one of them does instead: the threads path's code with its
tasks run one after another in the main thread, on one intra-op thread, against the matmul peak of one thread.
`--compile` (loop only) runs each task's function through torch.compile, its inner gradients taken by
torch.func so that the second-order graph compiles as one (a trial: metalearn does not offer it on the loop).

  python scripts/profile_maml.py                       # MAML, loop
  python scripts/profile_maml.py --algorithm fomaml
  python scripts/profile_maml.py --batching worker --rows 25
  python scripts/profile_maml.py --compile --rows 0
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_algorithms import build_learner, count_flops, matmul_peak_gflops  # noqa: E402

# the profiler's kernels of each compute-bound family, and the operators torch's FLOP counter charges for them;
# convolutions are one family because the double backward runs forward convolutions for backward FLOPs
FAMILIES = {
    "convolutions (forward, backward, double backward)": (
        {
            "aten::mkldnn_convolution",
            "aten::_convolution",
            "aten::convolution",
            "aten::conv2d",
            "aten::convolution_backward",
            "aten::_convolution_double_backward",
        },
        {"convolution", "convolution_backward"},
    ),
    "matrix products": (
        {"aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear"},
        {"mm", "addmm", "bmm"},
    ),
}


class InlineExecutor:
    """In place of the threads path's pool: its tasks run in the calling thread, where the profiler sees them."""

    def map(self, fn, items):
        return map(fn, items)


def compile_tasks(learner) -> None:
    """Each task's adaptation and query loss through torch.compile, inner gradients by torch.func.grad."""
    from metalearn.execution.tasks import functional_gradients

    eager = learner.adapt_and_score

    def functional(*args, **kwargs):
        with functional_gradients():
            return eager(*args, **kwargs)

    learner.adapt_and_score = torch.compile(functional)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algorithm", default="maml")
    parser.add_argument("--batching", default="loop", choices=("loop", "threads", "vmap", "worker"))
    parser.add_argument("--compile", action="store_true", help="torch.compile each task's function (loop only)")
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=2, help="profiled meta-iterations")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rows", type=int, default=15)
    args = parser.parse_args()
    if args.compile and args.batching != "loop":
        parser.error("--compile profiles the loop path: add --batching loop")

    from metalearn.data.glyphs import load_glyphs
    from metalearn.device import reuse_freed_memory
    from metalearn.sampling.sampler import EpisodeSampler

    reuse_freed_memory()  # as metalearn does by default (device.reuse_memory)
    torch.manual_seed(0)
    data = load_glyphs(train_classes=200, val_classes=10, test_classes=10)
    sampler = EpisodeSampler(data, n_way=5, k_shot=1, q_query=15, tasks_per_batch=args.tasks)
    batching = "threads" if args.batching == "worker" else args.batching
    learner = build_learner(args.algorithm, {"inner_steps": 1, "batching": batching}, data, 5)
    if args.batching == "worker":
        from metalearn.execution import threads

        torch.set_num_threads(1)  # one worker: threads.workers() is 1, and the tasks run in the calling thread
        threads._executor = lambda: InlineExecutor()
    if args.compile:
        compile_tasks(learner)
    optimizer = torch.optim.Adam(learner.parameters(), lr=1e-3)
    learner.train()

    def iteration(i: int) -> None:
        learner.set_progress(i, 1000)
        learner.outer_update(learner.meta_loss(sampler.train_batch()), optimizer, None)

    start, first_s = time.perf_counter(), 0.0
    for i in range(args.warmup):
        iteration(i + 1)
        if i == 0:
            first_s = time.perf_counter() - start
    times = []
    for i in range(args.iterations):
        start = time.perf_counter()
        iteration(args.warmup + i + 1)
        times.append(time.perf_counter() - start)
    plain_s = statistics.median(times)
    counter = count_flops(learner, lambda: iteration(args.warmup + args.iterations + 1))
    flops_by_op = {str(op).split(".")[-1]: n for op, n in counter.get_flop_counts()["Global"].items()}
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        for i in range(args.iterations):
            iteration(args.warmup + args.iterations + 2 + i)
    peak = matmul_peak_gflops(torch.device("cpu"))
    if args.compile:
        print(f"first meta-iteration (compilation included): {first_s:.1f} s")

    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total_us = sum(e.self_cpu_time_total for e in events)
    scale = plain_s / (total_us / 1e6 / args.iterations)  # the profiler's own overhead, taken out pro rata
    gflop = sum(flops_by_op.values()) / 1e9
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.algorithm}, batching={args.batching}, "
        f"meta-batch {args.tasks}; fp32 matmul peak {peak:.0f} GFLOP/s (same run)"
    )
    print(
        f"meta-iteration {plain_s:.2f} s unprofiled (median of {args.iterations}), {gflop:.1f} GFLOP: "
        f"{gflop / plain_s:.0f} GFLOP/s = {100 * gflop / plain_s / peak:.0f}% of peak; operator self times below are "
        f"scaled by {scale:.2f} to the unprofiled time"
    )
    print("\n| operator | calls/it | share of time | ms/it |\n|---|---:|---:|---:|")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[: args.rows]:
        ms = e.self_cpu_time_total / 1e3 / args.iterations * scale
        share = 100 * e.self_cpu_time_total / total_us
        print(f"| {e.key} | {e.count // args.iterations} | {share:.1f}% | {ms:.0f} |")
    print("\n| family | share of time | ms/it | GFLOP/it | GFLOP/s | % of peak |\n|---|---:|---:|---:|---:|---:|")
    counted = 0.0
    for family, (kernels, charged) in FAMILIES.items():
        us = sum(e.self_cpu_time_total for e in events if e.key in kernels)
        counted += us
        ms = us / 1e3 / args.iterations * scale
        fam_gflop = sum(n for op, n in flops_by_op.items() if op in charged) / 1e9
        rate = fam_gflop / (ms / 1e3) if ms else 0.0
        share = 100 * us / total_us
        print(f"| {family} | {share:.1f}% | {ms:.0f} | {fam_gflop:.1f} | {rate:.0f} | {100 * rate / peak:.0f}% |")
    rest_ms = (total_us - counted) / 1e3 / args.iterations * scale
    print(
        f"| everything else (no FLOPs counted) | {100 * (total_us - counted) / total_us:.1f}% | {rest_ms:.0f} | | | |"
    )
    if not 0.9 <= scale <= 1.1:
        print(
            f"(scaled by {scale:.2f}: the profiler's cost per call weighs most on the many small operators, so the "
            "families' rates above are overstated; `--batching worker` profiles with less distortion)"
        )


if __name__ == "__main__":
    main()
