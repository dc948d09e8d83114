"""The gymnasium adapter on a user environment written here (its hook, rollouts against a hand computation, the
errors), and the HalfCheetah task families' rewards (when MuJoCo is installed)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from metalearn.errors import ConfigError

gym = pytest.importorskip("gymnasium")

from metalearn.algorithms.maml_trpo import MAMLTRPO  # noqa: E402
from metalearn.data.gym_family import GymTaskFamily  # noqa: E402
from metalearn.models.mlp import MLP  # noqa: E402
from metalearn.sampling.tasks import TaskSampler  # noqa: E402


class LineWalk(gym.Env):
    """A user's environment: a walker on a line moved by its clipped action, rewarded -|x - goal| per step, with the
    task hook (sample_tasks, set_task); it terminates past |x| > 1.5."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    action_space = gym.spaces.Box(-0.5, 0.5, (1,), np.float32)

    def __init__(self, start: float = 0.0) -> None:
        self.start, self.goal, self.x = start, 0.0, start

    def sample_tasks(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(-1, 1, size=(n, 1))

    def set_task(self, task: np.ndarray) -> None:
        self.goal = float(task[0])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = self.start
        return np.array([self.x], dtype=np.float32), {}

    def step(self, action):
        self.x += float(action[0])
        return np.array([self.x], dtype=np.float32), -abs(self.x - self.goal), abs(self.x) > 1.5, False, {}


def line_walk(**kwargs) -> LineWalk:
    return LineWalk(**kwargs)


class PickArm(gym.Env):
    """A user's environment of discrete actions: reward 1 for pulling the task's arm, 0 otherwise."""

    observation_space = gym.spaces.Box(0, 1, (1,), np.float32)
    action_space = gym.spaces.Discrete(3)

    def sample_tasks(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(0, 3, size=(n, 1))

    def set_task(self, task: np.ndarray) -> None:
        self.arm = int(task[0])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.ones(1, dtype=np.float32), {}

    def step(self, action):
        assert isinstance(action, (int, np.integer))  # the index of the one-hot action
        return np.ones(1, dtype=np.float32), float(action == self.arm), False, False, {}


def pick_arm() -> PickArm:
    return PickArm()


def switches() -> PickArm:
    """PickArm with an action space no policy here has: several binary switches."""
    env = PickArm()
    env.action_space = gym.spaces.MultiBinary(3)
    return env


def test_adapter_takes_discrete_action_spaces_with_a_categorical_policy():
    family = GymTaskFamily(f"{__name__}:pick_arm", horizon=2)
    assert family.actions == "discrete" and family.action_dim == 3
    tasks = torch.tensor([[2.0], [0.0]])
    obs, done = family.reset(tasks, 1)
    one_hot = torch.tensor([[[0.0, 0.0, 1.0]], [[0.0, 1.0, 0.0]]])
    _, reward, _ = family.step(obs, one_hot, tasks, done)
    assert reward.view(-1).tolist() == [1.0, 0.0]
    learner = MAMLTRPO(MLP((1,), [4], activation="tanh"), "reinforcement", 3, batching="loop", family=family)
    assert "log_std" not in learner.theta()
    out = learner.meta_loss(TaskSampler(family, tasks_per_batch=2, trajectories=3).train_batch())
    learner.outer_update(out, None, None)
    assert 0 <= out.metrics["return_before"] <= 2 and 0 <= out.metrics["kl"] <= 0.01


def test_adapter_steps_a_user_environment_per_task_and_trajectory():
    family = GymTaskFamily(f"{__name__}:line_walk", horizon=4, env_kwargs={"start": 0.25})
    assert family.input_shape == (1,) and family.action_dim == 1
    tasks = torch.tensor([[1.0], [-1.0]])
    obs, done = family.reset(tasks, 2)
    assert obs.shape == (2, 2, 1) and torch.equal(obs, torch.full((2, 2, 1), 0.25)) and not done.any()
    # actions beyond the action space are clipped to +-0.5
    actions = torch.tensor([[[2.0], [0.1]], [[-2.0], [0.1]]])
    obs, reward, done = family.step(obs, actions, tasks, done)
    assert obs.view(-1).tolist() == pytest.approx([0.75, 0.35, -0.25, 0.35])
    assert reward.view(-1).tolist() == pytest.approx([-0.25, -0.65, -0.75, -1.35])
    obs, reward, done = family.step(obs, actions, tasks, done)
    obs, reward, done = family.step(obs, actions, tasks, done)  # the first walker passes 1.5: its reward counts
    assert done.tolist() == [[True, False], [False, False]] and reward[0, 0].item() == pytest.approx(-0.75)
    obs, reward, done = family.step(obs, actions, tasks, done)
    assert reward[0, 0].item() == 0.0 and done[1, 0]  # finished: no reward; the third walker now passes -1.5


def test_adapter_tasks_come_from_the_hook_and_a_learner_runs_on_them():
    family = GymTaskFamily(f"{__name__}:line_walk", horizon=5)
    sampler = TaskSampler(family, tasks_per_batch=3, trajectories=2, test_tasks=3)
    batch = sampler.train_batch()
    assert batch.params.shape == (3, 1) and (batch.params.abs() <= 1).all()
    again = TaskSampler(family, tasks_per_batch=3, trajectories=2).train_batch()
    assert torch.equal(batch.params, again.params)  # seeded from the sampler's stream
    learner = MAMLTRPO(MLP((1,), [4], activation="tanh"), "reinforcement", 1, batching="loop", eval_inner_steps=1)
    out = learner.meta_loss(batch)
    learner.outer_update(out, None, None)
    assert out.metrics["return_before"] < 0 and 0 <= out.metrics["kl"] <= 0.01


def test_adapter_errors_name_the_fix(monkeypatch):
    with pytest.raises(ConfigError, match="has no sample_tasks or set_task"):
        GymTaskFamily("CartPole-v1")
    with pytest.raises(ConfigError, match="cannot import"):
        GymTaskFamily("no_such_package.module:env")
    with pytest.raises(ConfigError, match="gymnasium cannot make it"):
        GymTaskFamily("NoSuchEnvironment-v9")
    with pytest.raises(ConfigError, match="has a MultiBinary action space; task families take Box"):
        GymTaskFamily(f"{__name__}:switches")
    real = importlib.import_module

    def without_gymnasium(name, *args):
        if name == "gymnasium":
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", without_gymnasium)
    with pytest.raises(ConfigError, match=r'pip install "metalearn\[mujoco\]"'):
        GymTaskFamily(f"{__name__}:line_walk")


@pytest.mark.skipif(importlib.util.find_spec("mujoco") is None, reason="MuJoCo is not installed")
def test_half_cheetah_rewards_are_the_papers():
    from metalearn.data.cheetah import CONTROL_COST, half_cheetah_dir, half_cheetah_vel

    rng = np.random.default_rng(0)
    velocity, direction = half_cheetah_vel(), half_cheetah_dir()
    goals = velocity.sample_tasks(200, rng)
    assert goals.shape == (200, 1) and 0 <= goals.min() and goals.max() <= 2
    assert set(direction.sample_tasks(50, rng).ravel().tolist()) == {-1.0, 1.0}
    action = np.full(6, 0.5, dtype=np.float32)
    for env, task, progress in (
        (velocity, 1.5, lambda v: -abs(v - 1.5)),
        (direction, -1.0, lambda v: -v),
    ):
        env.set_task(np.array([task]))
        env.reset(seed=0)
        _, reward, _, _, info = env.step(action)
        assert reward == pytest.approx(progress(info["x_velocity"]) - CONTROL_COST * 6 * 0.25)


@pytest.mark.skipif(importlib.util.find_spec("metaworld") is None, reason='needs pip install "metalearn[metaworld]"')
def test_metaworld_ml1_draws_held_out_test_tasks_and_each_task_has_its_own_goal():
    family = GymTaskFamily("metalearn.data.metaworld_family:ml1", horizon=3, env_kwargs={"task_name": "reach-v3"})
    assert family.split_tasks and family.actions == "continuous" and family.action_dim == 4
    sampler = TaskSampler(family, tasks_per_batch=2, trajectories=1, val_tasks=2, test_tasks=3)
    train, val, test = sampler.train_batch(), next(sampler.eval_batches("val")), next(sampler.eval_batches("test"))
    assert train.params[:, 1].tolist() == [0, 0] and val.params[:, 1].tolist() == [0, 0]
    assert test.params[:, 1].tolist() == [1, 1, 1]  # Meta-World's held-out goals
    tasks = torch.tensor([[0.0, 0.0], [5.0, 1.0]])
    obs, done = family.reset(tasks, 1, seeds=torch.tensor([1, 1]))
    _, reward, _ = family.step(obs, torch.zeros(2, 1, 4), tasks, done)
    assert reward[0, 0] != reward[1, 0]  # the same arm, the same action: two goals, two rewards
    learner = MAMLTRPO(MLP((39,), [8], activation="tanh"), "reinforcement", 4, batching="loop", family=family)
    out = learner.meta_loss(train)
    learner.outer_update(out, None, None)
    assert out.metrics["return_before"] > 0 and 0 <= out.metrics["kl"] <= 0.01
    with pytest.raises(ConfigError, match="is not a Meta-World ML1 task"):
        GymTaskFamily("metalearn.data.metaworld_family:ml1", env_kwargs={"task_name": "fly-v3"})
