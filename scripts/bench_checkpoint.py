"""What reliability costs: writing and loading a full checkpoint, and the per-iteration NaN/Inf check.

Default Conv4 ProtoNet (28x28 glyphs) with its Adam state, on the CPU. The checkpoint write includes
serialisation, fsync of the file and of its folder, and the rename. Run: python scripts/bench_checkpoint.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from metalearn.algorithms.protonet import ProtoNet
from metalearn.models.conv4 import Conv4
from metalearn.training.checkpoint import load_checkpoint, rng_state, save_checkpoint
from metalearn.training.trainer import all_finite


def best_of(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    torch.manual_seed(0)
    learner = ProtoNet(Conv4((1, 28, 28)), "classification", 5)
    optimizer = torch.optim.Adam(learner.parameters())
    episode_x = torch.rand(80, 1, 28, 28)
    learner.backbone(episode_x).sum().backward()
    optimizer.step()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "last.pt"
        payload = dict(
            config="",
            choices={},
            learner=learner.state_dict(),
            optimizer=optimizer.state_dict(),
            rng=rng_state(),
            iteration=1,
            window={"loss": [1.0] * 50},
        )
        write = best_of(lambda: save_checkpoint(path, **payload))
        read = best_of(lambda: load_checkpoint(path))
        size = path.stat().st_size
    tensors = [p.grad for p in learner.parameters()] + [p.detach() for p in learner.parameters()]
    check = best_of(lambda: all_finite(tensors), repeats=50)
    step = best_of(lambda: (learner.backbone(episode_x).sum().backward(), optimizer.step()), repeats=5)
    print(f"checkpoint {size / 1e6:.2f} MB: write (fsync + rename) {write * 1e3:.1f} ms, load {read * 1e3:.1f} ms")
    print(
        f"NaN/Inf check of gradients and parameters: {check * 1e6:.0f} us per iteration "
        f"({100 * check / step:.2f}% of one 5-way 1-shot ProtoNet step, {step * 1e3:.1f} ms)"
    )


if __name__ == "__main__":
    main()
