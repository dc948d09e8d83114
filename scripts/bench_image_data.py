"""Benchmark the natural-image data path: folder decode (first build and cached load) and augmentation.

Writes a synthetic folder of JPEGs (classes x images, 100x100 RGB) in a temporary directory, builds
dataset=folder at 84x84 twice (decode, then cache), and times `augment=standard` on 5-way 1-shot
15-query 84x84 training batches (80 images each) on the CPU, and on CUDA when present.

    python scripts/bench_image_data.py [--classes 40] [--images 50] [--batches 50]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from metalearn.data.augment import make_transform
from metalearn.data.folder import load_folder


def write_jpegs(root: Path, classes: int, images: int) -> None:
    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / f"class{c:03d}"
        folder.mkdir(parents=True)
        base = rng.integers(0, 256, size=(1, 1, 3))
        for k in range(images):
            noise = rng.integers(-40, 40, size=(100, 100, 3))
            Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(folder / f"{k:04d}.jpg", quality=90)


def time_augment(device: torch.device, batches: int) -> float:
    augment = make_transform("standard")
    assert augment is not None
    x = torch.rand(1, 80, 3, 84, 84, device=device)
    gen = torch.Generator().manual_seed(0)
    augment(x, gen)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(batches):
        augment(x, gen)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batches * 80 / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=40)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--batches", type=int, default=50)
    args = parser.parse_args()
    print(f"torch threads {torch.get_num_threads()}, cpu count {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        root, cache = Path(tmp) / "images", Path(tmp) / "cache"
        write_jpegs(root, args.classes, args.images)
        n = args.classes * args.images
        for label in ("first build (decode + resize + cache)", "cached load"):
            start = time.perf_counter()
            load_folder(str(root), image_size=84, cache_dir=str(cache))
            seconds = time.perf_counter() - start
            print(f"folder {n} JPEGs 100x100 -> 84x84, {label}: {seconds:.2f} s ({n / seconds:.0f} images/s)")
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for device in devices:
        rate = time_augment(device, args.batches)
        print(f"augment=standard on {device}: {rate:.0f} images/s ({rate / 80:.1f} 5-way 1+15-shot 84x84 episodes/s)")


if __name__ == "__main__":
    main()
