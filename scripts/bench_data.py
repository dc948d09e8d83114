"""Benchmark Omniglot loading and episode sampling.

Measures (1) the first decode of all 32,460 Omniglot images (background + evaluation zips, vinyals split,
28x28, rotations) into an empty cache, (2) the cached load of the same splits, and (3) episode sampling
throughput for 5-way tasks with 16 images per class at 28x28 with EpisodeSampler.train_batch and
tasks_per_batch=32, counting tasks per second. Usage:

    python scripts/bench_data.py [--root ../shared/data/omniglot] [--seconds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from metalearn.data.character_affine import random_affine
from metalearn.data.omniglot import load_omniglot
from metalearn.sampling.sampler import EpisodeSampler

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"


def timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def tasks_per_second(sampler: EpisodeSampler, seconds: float) -> tuple[float, float]:
    """Tasks per wall-clock second, and per second of this process's CPU time (less noisy on a shared machine)."""
    sampler.train_batch()  # warm-up
    tasks, start, cpu = 0, time.perf_counter(), time.process_time()
    while (elapsed := time.perf_counter() - start) < seconds:
        batch = sampler.train_batch()
        tasks += len(batch)
    return tasks / elapsed, tasks / max(time.process_time() - cpu, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--root", default=str(DEFAULT_ROOT), help="folder holding images_background.zip and images_evaluation.zip"
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="how long to sample for each throughput row")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")

    with tempfile.TemporaryDirectory() as cache:
        data, first = timed(lambda: load_omniglot(root=args.root, cache_dir=cache))
        _, cached = timed(lambda: load_omniglot(root=args.root, cache_dir=cache))
    images = sum(len(data.split(s).images) for s in ("train", "val", "test")) // 4  # 4 rotations per character
    rows = [
        ("first decode (vinyals, 28x28, into an empty cache)", f"{first:.2f} s", f"{images} images"),
        ("cached load (same settings)", f"{cached:.2f} s", ""),
    ]
    for k_shot, q_query, augment in ((1, 15, False), (16, 4, False), (1, 15, True)):
        data.train_transform = random_affine if augment else None
        sampler = EpisodeSampler(data, n_way=5, k_shot=k_shot, q_query=q_query, tasks_per_batch=32, seed=0)
        rate, cpu_rate = tasks_per_second(sampler, args.seconds)
        label = f"sampling 5-way, k_shot={k_shot} + q_query={q_query}, 32 tasks/batch" + (
            ", affine augmentation" if augment else ""
        )
        rows.append((label, f"{rate:,.0f} tasks/s", f"{cpu_rate:,.0f} tasks per CPU-second"))
    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure'.ljust(width)} | result | note\n{'-' * width}-|--------|-----")
    for name, value, note in rows:
        print(f"{name.ljust(width)} | {value} | {note}")


if __name__ == "__main__":
    main()
