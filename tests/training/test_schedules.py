"""The outer learning rate's schedules against values worked out by hand, and the optimiser's settings."""

from __future__ import annotations

import math

import pytest
import torch

from metalearn.training.trainer import Trainer, make_optimizer, make_scheduler


def learning_rates(trainer: Trainer, steps: int) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=trainer.lr)
    scheduler = make_scheduler(trainer, optimizer)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])  # the rate iteration i runs with
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return rates


def test_step_schedule_multiplies_the_rate_every_step_size_iterations():
    # Prototypical Networks: halved every 2,000 episodes; here every 3 iterations
    rates = learning_rates(Trainer(lr=0.8, scheduler="step", lr_step_size=3, lr_gamma=0.5), 8)
    assert rates == pytest.approx([0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2, 0.2], rel=1e-12)


def test_cosine_schedule_anneals_to_min_lr():
    rates = learning_rates(Trainer(lr=1.0, iterations=4, scheduler="cosine", min_lr=0.2), 5)
    expected = [0.2 + 0.8 * (1 + math.cos(math.pi * i / 4)) / 2 for i in range(5)]
    assert rates == pytest.approx(expected, rel=1e-9)


def test_no_schedule_keeps_the_rate():
    assert learning_rates(Trainer(lr=0.3), 4) == [0.3] * 4


def test_sgd_momentum_reaches_the_optimiser():
    trainer = Trainer(optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    group = make_optimizer(trainer, torch.nn.Linear(2, 2).parameters()).param_groups[0]
    assert (group["momentum"], group["nesterov"], group["weight_decay"], group["lr"]) == (0.9, True, 5e-4, 0.1)
    assert isinstance(make_optimizer(Trainer(), torch.nn.Linear(2, 2).parameters()), torch.optim.Adam)
