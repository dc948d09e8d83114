"""What the tests share: where things are, the one tiny-config preset, and ways to run metalearn.

Tests reach these through the fixtures of conftest.py (`cli`, `tiny`, `inprocess`, `omniglot_dir`);
module-level parametrisations import the constants from here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from metalearn.algorithms.base import MetaLearner
from metalearn.cli import compose_config, main
from metalearn.data.class_store import SplitData
from metalearn.data.glyphs import load_glyphs
from metalearn.sampling.sampler import EpisodeSampler

ROOT = Path(__file__).resolve().parents[1]
OMNIGLOT_DIR = Path(os.environ.get("METALEARN_OMNIGLOT_DIR", ROOT.parent / "shared" / "data" / "omniglot"))

# The one tiny preset for end-to-end runs: 16x16 glyphs, an 8-channel Conv4, a few episodes, the CPU, no
# progress bars. Seconds per run; a test adds what it needs on top (later overrides win).
TINY = [
    "dataset.train_classes=20",
    "dataset.val_classes=6",
    "dataset.test_classes=6",
    "dataset.image_size=16",
    "model.hidden_channels=8",
    "sampler.q_query=3",
    "sampler.val_episodes=4",
    "sampler.test_episodes=8",
    "trainer.progress=false",
    "device=cpu",
]


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    stdout: int | None = subprocess.PIPE,
) -> subprocess.CompletedProcess:
    """Run `python -m metalearn ARGS` in a subprocess and capture its output (HYDRA_FULL_ERROR unset unless
    `env` sets it); `stdout` may be another file descriptor, e.g. a pipe nobody reads."""
    full_env = {**os.environ, **(env or {})}
    if "HYDRA_FULL_ERROR" not in (env or {}):
        full_env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", "metalearn", *args],
        cwd=cwd or ROOT,
        env=full_env,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
    )


def main_status() -> object:
    """metalearn's entry point in this process, on sys.argv: its exit status, returned by a run or carried by the
    SystemExit that ends an error before the run."""
    try:
        return main()
    except SystemExit as stop:
        return stop.code


def run_inprocess(run_dir: Path, *overrides: str) -> dict[str, Any]:
    """metalearn.run.run on the composed config, on one thread (tiny tensors: more threads only contend
    with the other tests' processes); restores torch's thread count and determinism flag afterwards."""
    from metalearn.run import run

    cfg, choices = compose_config(list(overrides))
    was_deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run(cfg, Path(run_dir), list(overrides), choices)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        torch.set_num_threads(threads)


class Identity(torch.nn.Module):
    """A parameter-free backbone whose features are its inputs, [N, out_features]: with a learner's linear head
    the whole model is f(x) = W x + b, whose meta-gradients and logits can be worked out by hand."""

    def __init__(self, out_features: int = 1) -> None:
        super().__init__()
        self.out_features = out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def tiny_glyphs(train: int = 40, val: int = 10, test: int = 10) -> SplitData:
    return load_glyphs(train_classes=train, val_classes=val, test_classes=test)


def train_steps(learner: MetaLearner, sampler: EpisodeSampler, steps: int, lr: float = 1e-3) -> list[float]:
    """Plain meta-training for `steps` iterations; returns the loss of each step."""
    optimizer = torch.optim.Adam(learner.parameters(), lr=lr)
    losses = []
    learner.train()
    for i in range(1, steps + 1):
        learner.set_progress(i, steps)
        out = learner.meta_loss(sampler.train_batch())
        learner.outer_update(out, optimizer, None)
        losses.append(float(out.loss.detach()))
    return losses
