"""HalfCheetah task families of the MAML papers on gymnasium's MuJoCo HalfCheetah (an optional extra).

`half_cheetah_vel`: run at a target velocity drawn from U[0, 2] per task; reward -|v - v_goal| - 0.05 |a|^2.
`half_cheetah_dir`: run forward or backward (each with probability 1/2); reward direction * v - 0.05 |a|^2.
As in Finn et al. 2017 (section 5.3) and Rothfuss et al. 2019 (ProMP), with horizon 200 (dataset.horizon).
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

CONTROL_COST = 0.05  # 0.5 * 0.1 per squared action, the MAML-RL code's


class HalfCheetahTask(gymnasium.Wrapper):
    """HalfCheetah-v5 whose reward is replaced by a task's: `direction` or `velocity` (see the module docstring)."""

    def __init__(self, kind: str, **kwargs: Any) -> None:
        super().__init__(gymnasium.make("HalfCheetah-v5", **kwargs))
        self.kind = kind
        self.task = np.zeros(1, dtype=np.float32)

    def sample_tasks(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.kind == "velocity":
            return rng.uniform(0.0, 2.0, size=(n, 1))
        return 2.0 * rng.integers(0, 2, size=(n, 1)) - 1.0

    def set_task(self, task: np.ndarray) -> None:
        self.task = np.asarray(task, dtype=np.float32).reshape(1)

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        observation, _, terminated, truncated, info = self.env.step(action)
        velocity = float(info["x_velocity"])
        progress = -abs(velocity - float(self.task[0])) if self.kind == "velocity" else float(self.task[0]) * velocity
        reward = progress - CONTROL_COST * float(np.square(action).sum())
        return observation, reward, terminated, truncated, info


def half_cheetah_vel(**kwargs: Any) -> HalfCheetahTask:
    return HalfCheetahTask("velocity", **kwargs)


def half_cheetah_dir(**kwargs: Any) -> HalfCheetahTask:
    return HalfCheetahTask("direction", **kwargs)
