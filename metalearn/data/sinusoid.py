"""`sinusoid`: few-shot regression tasks of Finn et al. 2017 (MAML, section 5.1).

A task is y = A sin(x - phase) with A ~ U[0.1, 5], phase ~ U[0, pi], x ~ U[-5, 5]; the metric is MSE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from metalearn.episode import EpisodeBatch


@dataclass
class SinusoidTasks:
    """An endless source of sinusoid regression tasks; every split draws from the same task distribution.

    Args:
        amplitude_min, amplitude_max (float, 0.1, 5.0): A ~ U[min, max].
        phase_min, phase_max (float, 0, pi): phase ~ U[min, max].
        x_min, x_max (float, -5.0, 5.0): x ~ U[min, max].

    Shapes: sample(n_tasks, k_shot, q_query) gives an EpisodeBatch with x [n_tasks, k_shot, 1] and
    y [n_tasks, k_shot, 1] for support (q_query for query).

    References:
        Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks", ICML 2017.
    """

    amplitude_min: float = 0.1
    amplitude_max: float = 5.0
    phase_min: float = 0.0
    phase_max: float = math.pi
    x_min: float = -5.0
    x_max: float = 5.0

    name: str = "sinusoid"
    task: str = "regression"
    input_shape: tuple[int, ...] = (1,)

    def sample(self, n_tasks: int, k_shot: int, q_query: int, gen: torch.Generator) -> EpisodeBatch:
        """Draw n_tasks tasks with k_shot support and q_query query points each."""
        amp = self.amplitude_min + (self.amplitude_max - self.amplitude_min) * torch.rand(n_tasks, 1, 1, generator=gen)
        phase = self.phase_min + (self.phase_max - self.phase_min) * torch.rand(n_tasks, 1, 1, generator=gen)
        x = self.x_min + (self.x_max - self.x_min) * torch.rand(n_tasks, k_shot + q_query, 1, generator=gen)
        y = amp * torch.sin(x - phase)
        return EpisodeBatch(x[:, :k_shot], y[:, :k_shot], x[:, k_shot:], y[:, k_shot:])
