"""`dataset=gym`: a gymnasium environment with a task hook becomes a task family, stepped in a gymnasium vector env.

The hook: the environment (any wrapper of it) has two methods,

    sample_tasks(n: int, rng: numpy.random.Generator) -> array [n, P]   # n tasks' parameters
    set_task(task: array [P]) -> None                                   # act in this task from the next reset

as the meta-RL environments of the MAML papers do (a goal velocity, a direction, a goal position). A family whose
test tasks are a held-out set (Meta-World) takes a third argument, `split` ("train", "val" or "test"). `env` names
either a registered gymnasium id (`gymnasium.make(env, **env_kwargs)`) or a callable as `package.module:function`
that returns the environment. Every task x trajectory of a rollout is one sub-environment of a
gymnasium.vector.SyncVectorEnv; observations, rewards and `done` come back as tensors shaped like the tensor task
families' ([B, N, D], [B, N]), so the learners and rollouts are the same for both.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from metalearn.errors import ConfigError

EXTRA = "mujoco"


def _gymnasium() -> Any:
    try:
        return importlib.import_module("gymnasium")
    except ImportError:
        raise ConfigError(
            "reinforcement-learning environments need gymnasium (and MuJoCo for the locomotion tasks): "
            f'pip install "metalearn[{EXTRA}]"'
        ) from None


def make_env(env: str, env_kwargs: dict[str, Any]) -> Any:
    """The environment `env` names: `package.module:function` (called with env_kwargs) or a gymnasium id."""
    try:
        return _make_env(env, env_kwargs)
    except OSError as exc:  # a compiled library that does not load, e.g. MuJoCo's pieces of two versions mixed
        raise ConfigError(
            f"dataset.env={env}: a library it needs does not load ({exc}); reinstall it in a fresh environment"
        ) from None


def _make_env(env: str, env_kwargs: dict[str, Any]) -> Any:
    gym = _gymnasium()
    if ":" in env:
        module, _, attr = env.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            if exc.name in ("mujoco", "gymnasium", "metaworld"):
                extra = "metaworld" if exc.name == "metaworld" else EXTRA
                raise ConfigError(f'dataset.env={env} needs {exc.name}: pip install "metalearn[{extra}]"') from None
            raise ConfigError(f"dataset.env={env}: cannot import {module} ({exc})") from None
        except AttributeError:
            raise ConfigError(f"dataset.env={env}: {module} has no {attr}") from None
        return factory(**env_kwargs)
    try:
        return gym.make(env, **env_kwargs)
    except gym.error.Error as exc:
        raise ConfigError(f"dataset.env={env}: gymnasium cannot make it ({str(exc).splitlines()[0]})") from None
    except ImportError as exc:
        raise ConfigError(f'dataset.env={env} needs {exc.name}: pip install "metalearn[{EXTRA}]"') from None


class GymTaskFamily:
    """A gymnasium environment with sample_tasks / set_task as a task family (see the module docstring).

    Args:
        env (str): a gymnasium id or `package.module:function`.
        horizon (int, 200): steps per trajectory.
        env_kwargs (dict | None, None): passed to the environment's constructor.

    Shapes: task parameters [B, P]; observations [B, N, *observation_shape]; actions [B, N, A]: for a Box action
    space, clipped to its bounds before they reach the environment; for a Discrete(A) one, one-hot, the environment
    getting the index; rewards and `done` [B, N].
    """

    task: ClassVar[str] = "reinforcement"

    def __init__(self, env: str = "", horizon: int = 200, env_kwargs: dict[str, Any] | None = None) -> None:
        self.env, self.env_kwargs, self.horizon = env, dict(env_kwargs or {}), horizon
        self.name = env
        probe = make_env(env, self.env_kwargs)
        missing = [m for m in ("sample_tasks", "set_task") if not _has(probe, m)]
        if missing:
            raise ConfigError(
                f"dataset.env={env} has no {' or '.join(missing)}: a task family's environment needs "
                "sample_tasks(n, rng) -> [n, P] parameters and set_task(task) (metalearn/data/gym_family.py)"
            )
        self._probe = probe
        # whether the hook takes the split: then validation and test tasks are drawn as the family says
        self.split_tasks = "split" in inspect.signature(probe.get_wrapper_attr("sample_tasks")).parameters
        self.input_shape: tuple[int, ...] = tuple(probe.observation_space.shape)
        space = probe.action_space
        if isinstance(space, _gymnasium().spaces.Discrete):
            # a categorical policy over the n actions; the environment is given the index of the one-hot action
            self.actions, self.action_dim = "discrete", int(space.n)
        elif isinstance(space, _gymnasium().spaces.Box):
            self.actions, self.action_dim = "continuous", int(np.prod(space.shape))
            self._low = torch.as_tensor(space.low, dtype=torch.float32)
            self._high = torch.as_tensor(space.high, dtype=torch.float32)
        else:
            raise ConfigError(
                f"dataset.env={env} has a {type(space).__name__} action space; task families take Box (continuous) "
                "or Discrete action spaces"
            )
        self._vector: Any = None

    def sample_tasks(self, n_tasks: int, gen: torch.Generator, split: str = "train") -> Tensor:
        """n_tasks tasks' parameters [n_tasks, P] of `split` from the environment's hook, seeded from `gen`."""
        rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=gen)))
        hook = self._probe.get_wrapper_attr("sample_tasks")
        tasks = np.asarray(hook(n_tasks, rng, split) if self.split_tasks else hook(n_tasks, rng), dtype=np.float32)
        return torch.from_numpy(tasks.reshape(n_tasks, -1))

    def _envs(self, count: int) -> Any:
        if self._vector is None or self._vector.num_envs != count:
            gym = _gymnasium()
            if self._vector is not None:
                self._vector.close()
            # the default autoreset restarts a finished sub-environment at its next step; `done` masks that out
            self._vector = gym.vector.SyncVectorEnv([lambda: make_env(self.env, self.env_kwargs) for _ in range(count)])
        return self._vector

    def reset(self, tasks: Tensor, trajectories: int, seeds: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Start every task x trajectory sub-environment in its task: observations [B, N, D] and `done` [B, N]."""
        b = tasks.shape[0]
        vector = self._envs(b * trajectories)
        for k, sub in enumerate(vector.envs):
            sub.get_wrapper_attr("set_task")(tasks[k // trajectories].cpu().numpy())
        starts = None
        if seeds is not None:
            starts = [int(seeds[k // trajectories]) * trajectories + k % trajectories for k in range(b * trajectories)]
        observations, _ = vector.reset(seed=starts)
        obs = torch.as_tensor(np.asarray(observations), dtype=torch.float32).view(b, trajectories, *self.input_shape)
        return obs.to(tasks.device), torch.zeros(b, trajectories, dtype=torch.bool, device=tasks.device)

    def step(self, states: Tensor, actions: Tensor, tasks: Tensor, done: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Step every sub-environment: (observations, rewards, done); a finished trajectory collects zero reward."""
        b, n = done.shape
        if self.actions == "discrete":
            sent = actions.detach().argmax(-1).cpu().reshape(b * n).numpy()
        else:
            clipped = torch.maximum(torch.minimum(actions.detach().cpu().float(), self._high), self._low)
            sent = clipped.reshape(b * n, -1).numpy()
        observations, rewards, terminated, truncated, _ = self._vector.step(sent)
        device = states.device
        obs = torch.as_tensor(np.asarray(observations), dtype=torch.float32).view(b, n, *self.input_shape).to(device)
        reward = torch.as_tensor(np.asarray(rewards), dtype=torch.float32).view(b, n).to(device)
        ended = torch.as_tensor(np.asarray(terminated) | np.asarray(truncated)).view(b, n).to(device)
        return obs, torch.where(done, torch.zeros_like(reward), reward), done | ended


def _has(env: Any, method: str) -> bool:
    try:
        return callable(env.get_wrapper_attr(method))
    except AttributeError:
        return False
