"""Builders shared by tests: a tiny glyphs problem and a short training loop."""

from __future__ import annotations

import torch

from metalearn.algorithms.base import MetaLearner
from metalearn.data.class_store import SplitData
from metalearn.data.glyphs import load_glyphs
from metalearn.sampling.sampler import EpisodeSampler


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
