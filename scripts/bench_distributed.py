"""Meta-iteration time of one process against two (torchrun, gloo) with the same global meta-batch, and what the
all-reduce of a meta-gradient costs, on this machine's CPUs.

Each setting is a real `metalearn` run (Omniglot-shaped glyphs: 28x28x1, Conv4 with 64 channels, 5-way 1-shot,
15 queries, 32 tasks per meta-batch) with a metrics row per iteration and no validation; an iteration's time is
the difference of consecutive rows' elapsed_s, and the median over the iterations after the first few is reported.
The settings: one process on one thread, one process on all the CPUs (torch's intra-op threads, or
batching=threads for MAML), and torchrun with one process per CPU, one thread each.

The all-reduce: gloo's time for a float32 tensor of the learner's parameter count between two local processes,
against the iteration time: the share of an iteration that communication takes where the processes are on one
machine. Across machines the same bytes go through the network: see docs/performance.md for the arithmetic.

    python scripts/bench_distributed.py [--iterations 20] [--algorithms protonet maml]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETUP = [
    "dataset.image_size=28",
    "sampler.tasks_per_batch=32",
    "sampler.q_query=15",
    "trainer.val_interval=1000000",
    "trainer.log_interval=1",
    "trainer.checkpoint_interval=1000000",
    "sampler.test_episodes=2",
    "trainer.progress=false",
    "device=cpu",
]
ALGORITHMS = {
    "protonet": ["algorithm=protonet"],
    "maml": ["algorithm=maml", "algorithm.batching=loop"],
    "fomaml": ["algorithm=fomaml", "algorithm.batching=loop"],
}
WARMUP = 3


def iteration_time(run_dir: Path) -> float:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    times = [b["elapsed_s"] - a["elapsed_s"] for a, b in zip(rows, rows[1:])][WARMUP:]
    return statistics.median(times)


def run(overrides: list[str], processes: int, threads: int, work: Path, name: str) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", "-m"]
        if processes > 1
        else [sys.executable, "-m"]
    )
    run_dir = work / name
    done = subprocess.run(
        [*launcher, "metalearn", *overrides, f"hydra.run.dir={run_dir}"], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    return iteration_time(run_dir)


ALL_REDUCE = """
import sys, time, torch, torch.distributed as dist
dist.init_process_group("gloo")
x = torch.zeros(int(sys.argv[1]))
for _ in range(3):
    dist.all_reduce(x)
times = []
for _ in range(20):
    dist.barrier(); t = time.perf_counter(); dist.all_reduce(x); times.append(time.perf_counter() - t)
if dist.get_rank() == 0:
    print(sorted(times)[len(times) // 2])
dist.destroy_process_group()
"""


def all_reduce_time(numel: int, work: Path) -> float:
    script = work / "all_reduce.py"
    script.write_text(ALL_REDUCE)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)]
    done = subprocess.run([*command, str(numel)], capture_output=True, text=True, env={**os.environ})
    return float(done.stdout.strip().splitlines()[-1])


def parameter_count(overrides: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    from metalearn.cli import compose_config
    from metalearn.run import _build

    cfg, _ = compose_config(overrides)
    return sum(p.numel() for p in _build(cfg).learner.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--algorithms", nargs="+", default=["protonet", "maml"], choices=list(ALGORITHMS))
    args = parser.parse_args()
    cpus = len(os.sched_getaffinity(0))
    print(f"{cpus} CPUs; meta-batch 32, 5-way 1-shot, 15 queries, Conv4-64 on 28x28x1")
    print(
        "| algorithm | 1 process, 1 thread | 1 process, all CPUs | torchrun, 1 process per CPU | speed-up of torchrun "
        "over 1 process (all CPUs) | all-reduce of the gradient | its share of a 2-process iteration |"
    )
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for name in args.algorithms:
            overrides = [*SETUP, *ALGORITHMS[name], f"trainer.iterations={args.iterations}"]
            one = run(overrides, 1, 1, work, f"{name}-1x1")
            threaded = [*overrides, "algorithm.batching=threads"] if name != "protonet" else overrides
            many_threads = run(threaded, 1, cpus, work, f"{name}-1x{cpus}")
            ranks = run(overrides, cpus, 1, work, f"{name}-{cpus}x1")
            count = parameter_count(overrides)
            reduce_s = all_reduce_time(count, work)
            print(
                f"| {name} ({count:,} parameters, {4 * count / 1e6:.2f} MB) | {one:.3f} s | {many_threads:.3f} s | "
                f"{ranks:.3f} s | {many_threads / ranks:.2f}x ({one / ranks / cpus:.0%} of linear from 1 thread) | "
                f"{1e3 * reduce_s:.2f} ms | {reduce_s / ranks:.1%} |"
            )


if __name__ == "__main__":
    main()
