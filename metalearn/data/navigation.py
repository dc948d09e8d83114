"""`navigation2d`: the 2D navigation task family of Finn et al. 2017 (MAML, section 5.3), as tensors.

A point agent starts at the origin; each step its action (a velocity, times `action_scale`, clipped to
[-limit, limit] per coordinate) moves it, and the reward is minus its distance to the task's goal, drawn uniformly
from [low, high]^2 per task. A trajectory ends after `horizon` steps, or once the agent is within 0.01 of the goal
in both coordinates (from then on it collects no reward), as in the environment of the MAML-RL code
(cbfinn/maml_rl, point_env_randgoal.py) that the published returns come from.

Every task and trajectory steps at once: states are [tasks, trajectories, 2] tensors on any device, so a
meta-batch of 20 tasks x 20 trajectories is one tensor operation per time step, not 400 Python environments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor


@dataclass
class Navigation2D:
    """The task family: goal positions, and dynamics vectorised over tasks and trajectories.

    Args:
        goal_low, goal_high (float, -0.5, 0.5): goals are drawn from U[goal_low, goal_high]^2.
        action_limit (float, 0.1): each action coordinate is clipped to [-action_limit, action_limit].
        action_scale (float, 1.0): actions are multiplied by it before the clipping. The MAML-RL code wraps the
            environment in rllab's `normalize`, which maps the policy's [-1, 1] onto the action bounds: its agent
            moves by clip(0.1 a, -0.1, 0.1), action_scale=0.1 here (experiment=maml_trpo_navigation2d).
        horizon (int, 100): steps per trajectory.
        reward (str, "distance"): minus the Euclidean distance to the goal (the MAML-RL code, and the returns
            published from it), or "squared_distance" (minus its square, as Finn et al.'s text words it).

    Shapes: goals [B, 2]; states and actions [B, N, 2] for B tasks of N trajectories; rewards and `done` [B, N].

    References:
        Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks", ICML 2017.
    """

    goal_low: float = -0.5
    goal_high: float = 0.5
    action_limit: float = 0.1
    action_scale: float = 1.0
    horizon: int = 100
    reward: str = "distance"

    name: ClassVar[str] = "navigation2d"
    task: ClassVar[str] = "reinforcement"
    input_shape: ClassVar[tuple[int, ...]] = (2,)  # the observation: the agent's position
    action_dim: ClassVar[int] = 2
    #: a goal counts as reached within this distance per coordinate (the MAML-RL environment's)
    reach: ClassVar[float] = 0.01

    def sample_tasks(self, n_tasks: int, gen: torch.Generator) -> Tensor:
        """Goals [n_tasks, 2] drawn from U[goal_low, goal_high]^2."""
        return self.goal_low + (self.goal_high - self.goal_low) * torch.rand(n_tasks, 2, generator=gen)

    def reset(self, goals: Tensor, trajectories: int, seeds: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Start states [B, N, 2] (the origin: `seeds` have nothing to draw) and the `done` flags [B, N] (False)."""
        shape = (goals.shape[0], trajectories)
        return goals.new_zeros(*shape, 2), torch.zeros(shape, dtype=torch.bool, device=goals.device)

    def step(self, states: Tensor, actions: Tensor, goals: Tensor, done: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One step of every trajectory: (next states, rewards, done). Finished trajectories stay where they are
        and collect zero reward."""
        moved = states + (self.action_scale * actions).clamp(-self.action_limit, self.action_limit)
        states = torch.where(done[..., None], states, moved)
        offset = states - goals[:, None, :]
        squared = offset.pow(2).sum(-1)
        reward = -squared if self.reward == "squared_distance" else -squared.sqrt()
        reward = torch.where(done, torch.zeros_like(reward), reward)
        done = done | (offset.abs() < self.reach).all(-1)
        return states, reward, done
