"""Benchmark the few-shot video pipeline: decoding into the cache, episode sampling from it, and the peak memory of
one training episode.

(1) Decoding: writes `--videos` synthetic videos (48 frames of 320x240, moving noise) as frame folders of JPEGs and
    as H.264 .mp4 files (PyAV), then times the first build of each into an empty cache (16 stored frames of
    112x112 per video) and a cached load; clips per second.
(2) Sampling: EpisodeSampler.train_batch on a cache of random clips [N, 16, 3, 112, 112] showing 8 frames, 5-way
    5-shot 15-query episodes; episodes and clips per second.
(3) Peak memory of one ProtoNet training step (forward and backward) on a 5-way 5-shot 15-query episode of 8 frames
    of 112x112 with torchvision's ResNet-18 per frame: on the CPU the growth of the process's peak resident memory
    over the step, measured in a fresh process; on CUDA (--device cuda) torch.cuda.max_memory_allocated.

    python scripts/bench_video.py [--videos 64] [--seconds 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from metalearn.data.class_store import ClassStore, SplitData
from metalearn.data.video import load_video
from metalearn.sampling.sampler import EpisodeSampler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_algorithms import matmul_peak_gflops  # noqa: E402

FRAMES, WIDTH, HEIGHT = 48, 320, 240


def _frames(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (HEIGHT, WIDTH + FRAMES, 3), dtype=np.uint8)
    return [np.ascontiguousarray(base[:, f : f + WIDTH]) for f in range(FRAMES)]  # a pan across noise


def write_videos(root: Path, count: int) -> Path:
    """`count` videos in 4 classes, as frame folders under root/frames and .mp4 files under root/mp4."""
    import av

    lines = []
    for v in range(count):
        label, name = f"class{v % 4}", f"video{v:04d}"
        lines.append(f"{label}/{name}")
        frames = _frames(v)
        folder = root / "frames" / label / name
        folder.mkdir(parents=True)
        for i, frame in enumerate(frames):
            Image.fromarray(frame).save(folder / f"img_{i + 1:05d}.jpg", quality=90)
        (root / "mp4" / label).mkdir(parents=True, exist_ok=True)
        with av.open(str(root / "mp4" / label / f"{name}.mp4"), "w") as container:
            stream = container.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    splits = root / "splits"
    splits.mkdir()
    for split in ("train", "val", "test"):  # the same videos in every split: each build decodes them three times
        (splits / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return splits


def decoding(root: Path, count: int) -> list[dict]:
    splits = write_videos(root, count)
    rows = []
    for layout in ("frames", "mp4"):
        cache = root / f"cache-{layout}"
        kwargs = dict(
            root=str(root / layout), splits=str(splits), stored_frames=16, image_size=112, cache_dir=str(cache)
        )
        start = time.perf_counter()
        load_video(**kwargs)
        first = time.perf_counter() - start
        start = time.perf_counter()
        load_video(**kwargs)
        cached = time.perf_counter() - start
        clips = 3 * count
        rows.append({"layout": layout, "clips": clips, "decode_clips_per_s": clips / first, "cached_load_s": cached})
    return rows


def sampling(seconds: float) -> dict:
    gen = torch.Generator().manual_seed(0)
    store = ClassStore(
        torch.randint(0, 256, (20 * 20, 16, 3, 112, 112), dtype=torch.uint8, generator=gen),
        torch.arange(0, 401, 20),
        [f"c{i}" for i in range(20)],
    )
    sampler = EpisodeSampler(SplitData(store, store, store, "random", frames=8), n_way=5, k_shot=5, q_query=15)
    sampler.train_batch()
    episodes, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        sampler.train_batch()
        episodes += 1
    return {"episodes_per_s": episodes / elapsed, "clips_per_s": episodes * 100 / elapsed}


def peak_memory(device: str) -> dict:
    """One ProtoNet step on a 5-way 5-shot 15-query episode of 8 frames of 112x112, ResNet-18 per frame."""
    from metalearn.algorithms.protonet import ProtoNet
    from metalearn.episode import EpisodeBatch
    from metalearn.models.torchvision_resnet import TorchvisionResNet

    torch.manual_seed(0)
    dev = torch.device(device)
    learner = ProtoNet(TorchvisionResNet((8, 3, 112, 112), depth=18), "classification", 5).to(dev)
    labels = torch.arange(5).repeat_interleave(5)[None].to(dev)
    query_y = torch.arange(5).repeat_interleave(15)[None].to(dev)
    batch = EpisodeBatch(
        torch.rand(1, 25, 8, 3, 112, 112, device=dev),
        labels,
        torch.rand(1, 75, 8, 3, 112, 112, device=dev),
        query_y,
        n_way=5,
    )
    if dev.type == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    learner.meta_loss(batch).loss.backward()
    if dev.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    return {
        "device": device,
        "frames": 100 * 8,
        "step_s": time.perf_counter() - start,
        "peak_step_memory_gib": peak / 2**30,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)  # the fresh process of (3)
    args = parser.parse_args()
    if args.memory_only:
        print(json.dumps(peak_memory(args.device)))
        return
    peak = matmul_peak_gflops(torch.device("cpu"))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32 matmul peak {peak:.0f} GFLOP/s, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for row in decoding(Path(tmp), args.videos):
            print(
                f"decode {row['layout']:>6}: {row['decode_clips_per_s']:.1f} clips/s into the cache "
                f"({row['clips']} clips); cached load {row['cached_load_s']:.2f} s"
            )
    row = sampling(args.seconds)
    print(
        f"sampling 5-way 5-shot 15-query, 8 of 16 frames of 112x112: {row['episodes_per_s']:.1f} episodes/s "
        f"({row['clips_per_s']:.0f} clips/s)"
    )
    out = subprocess.run(
        [sys.executable, __file__, "--memory-only", "--device", args.device], capture_output=True, text=True, check=True
    ).stdout
    mem = json.loads(out.strip().splitlines()[-1])
    print(
        f"ProtoNet + ResNet-18 step, 5-way 5-shot 15-query x 8 frames of 112x112 on {mem['device']}: "
        f"peak memory {mem['peak_step_memory_gib']:.2f} GiB over the step, {mem['step_s']:.2f} s"
    )


if __name__ == "__main__":
    main()
