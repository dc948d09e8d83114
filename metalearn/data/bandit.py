"""`bandit`: k-armed Bernoulli bandits as a task family (Duan et al. 2016, RL^2; Wang et al. 2016), as tensors.

A task is a bandit: k arms whose success probabilities are drawn from U[0, 1] per task. Each step of a trajectory
pulls one arm (a discrete action, one-hot [k]) and is rewarded 1 with that arm's probability, 0 otherwise; the
observation is a constant, so what a policy knows of the task is what adaptation taught it. The family scores a
policy by its regret: sum over pulls of (best arm's probability - pulled arm's probability), the expected reward
given up to the best arm (the pseudo-regret, free of the rewards' own noise), averaged over trajectories.

Every task and trajectory steps at once; each rollout's reward draws come from its seed, so a rollout is fixed by
the task sampler's seeds like its action noise is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor


@dataclass
class Bandit:
    """The task family: arm probabilities per task, and pulls vectorised over tasks and trajectories.

    Args:
        arms (int, 5): arms per bandit (Duan et al. 2016: 5, 10, 50).
        horizon (int, 10): pulls per trajectory (Duan et al. 2016: 10, 100, 500 per trial).

    Shapes: tasks (arm probabilities) [B, k]; observations [B, N, 1] (a constant); actions one-hot [B, N, k];
    rewards and `done` [B, N]; regret [B].

    References:
        Duan et al., "RL^2: Fast Reinforcement Learning via Slow Reinforcement Learning", arXiv:1611.02779, 2016.
        Wang et al., "Learning to Reinforcement Learn", arXiv:1611.05763, 2016.
    """

    arms: int = 5
    horizon: int = 10
    _draws: Tensor | None = field(default=None, init=False, repr=False)
    _pulls: int = field(default=0, init=False, repr=False)

    name: ClassVar[str] = "bandit"
    task: ClassVar[str] = "reinforcement"
    actions: ClassVar[str] = "discrete"
    input_shape: ClassVar[tuple[int, ...]] = (1,)

    @property
    def action_dim(self) -> int:
        return self.arms

    def sample_tasks(self, n_tasks: int, gen: torch.Generator) -> Tensor:
        """Arm success probabilities [n_tasks, arms] drawn from U[0, 1]."""
        return torch.rand(n_tasks, self.arms, generator=gen)

    def reset(self, tasks: Tensor, trajectories: int, seeds: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The constant observations [B, N, 1] and `done` [B, N] (False); draws this rollout's reward noise
        [B, N, horizon] from each task's seed (`seeds` [B]; unseeded where None)."""
        b = tasks.shape[0]
        if seeds is None:
            draws = torch.rand(b, trajectories, self.horizon)
        else:
            draws = torch.stack(
                [torch.rand(trajectories, self.horizon, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
            )
        self._draws, self._pulls = draws.to(tasks.device, tasks.dtype), 0
        shape = (b, trajectories)
        return tasks.new_ones(*shape, 1), torch.zeros(shape, dtype=torch.bool, device=tasks.device)

    def step(self, states: Tensor, actions: Tensor, tasks: Tensor, done: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Pull the arm of each one-hot action [B, N, k]: reward 1 with its probability, else 0."""
        if self._draws is None or self._pulls >= self._draws.shape[-1]:
            raise RuntimeError("Bandit.step needs a reset before each trajectory of `horizon` pulls")
        chance = (actions * tasks[:, None, :]).sum(-1)
        reward = (self._draws[..., self._pulls] < chance).to(tasks.dtype)
        self._pulls += 1
        return states, torch.where(done, torch.zeros_like(reward), reward), done

    def regret(self, tasks: Tensor, actions: Tensor, mask: Tensor) -> Tensor:
        """Each task's pseudo-regret [B]: sum over the pulls of a trajectory (actions [B, N, H, k], mask [B, N, H])
        of max_j p_j - p_pulled, averaged over its N trajectories."""
        pulled = (actions * tasks[:, None, None, :]).sum(-1)
        best = tasks.max(-1).values[:, None, None]
        return ((best - pulled) * mask).sum(-1).mean(-1)
