"""The navigation task family and the policy-gradient pieces against hand computations and independent solutions."""

from __future__ import annotations

import math

import pytest
import torch

from metalearn.algorithms.maml_trpo import MAMLTRPO
from metalearn.algorithms.policy_gradient import (
    baseline_features,
    discounted_returns,
    fit_linear_baseline,
    gae,
    gaussian_kl,
    gaussian_log_prob,
)
from metalearn.data.navigation import Navigation2D
from metalearn.sampling.tasks import TaskSampler
from tests.support import Identity


def test_navigation_steps_clips_rewards_and_stops_at_the_goal():
    env = Navigation2D()
    goals = torch.tensor([[0.3, -0.2], [0.05, 0.0]])
    states, done = env.reset(goals, 1)
    assert torch.equal(states, torch.zeros(2, 1, 2)) and not done.any()
    actions = torch.tensor([[[0.5, -0.05]], [[0.05, 0.005]]])
    states, reward, done = env.step(states, actions, goals, done)
    # task 0: the action is clipped to (0.1, -0.05); distance to (0.3, -0.2) is sqrt(0.2^2 + 0.15^2) = 0.25
    assert torch.allclose(states[0, 0], torch.tensor([0.1, -0.05]))
    assert reward[0, 0].item() == pytest.approx(-0.25, abs=1e-6)
    # task 1: (0.05, 0.005) is within 0.01 of the goal in both coordinates: this step's reward counts, then it stops
    assert reward[1, 0].item() == pytest.approx(-0.005, abs=1e-6) and done.tolist() == [[False], [True]]
    later, reward, done = env.step(states, actions, goals, done)
    assert torch.equal(later[1], states[1]) and reward[1, 0].item() == 0.0
    squared = Navigation2D(reward="squared_distance")
    _, reward, _ = squared.step(
        torch.zeros(1, 1, 2), torch.tensor([[[0.5, -0.05]]]), goals[:1], torch.zeros(1, 1, dtype=torch.bool)
    )
    assert reward.item() == pytest.approx(-0.0625, abs=1e-6)
    # the MAML-RL code's rllab `normalize`: the action is scaled by 0.1, then clipped
    scaled = Navigation2D(action_scale=0.1)
    moved, _, _ = scaled.step(
        torch.zeros(1, 1, 2), torch.tensor([[[0.5, -2.0]]]), goals[:1], torch.zeros(1, 1, dtype=torch.bool)
    )
    assert moved.view(-1).tolist() == pytest.approx([0.05, -0.1])


def test_task_sampler_fixed_tasks_do_not_depend_on_the_chunking():
    env = Navigation2D()
    whole = list(TaskSampler(env, test_tasks=7, eval_batch_size=7).eval_batches("test"))
    parts = list(TaskSampler(env, test_tasks=7, eval_batch_size=3).eval_batches("test"))
    assert [len(b) for b in parts] == [3, 3, 1]
    assert torch.equal(torch.cat([b.params for b in parts]), whole[0].params)
    assert torch.equal(torch.cat([b.noise(2) for b in parts], dim=1), whole[0].noise(2))
    assert not torch.equal(whole[0].noise(0), whole[0].noise(1))  # each rollout of a task has its own noise
    more = TaskSampler(env, trajectories=5, eval_trajectories=9, test_tasks=7)
    assert more.train_batch().trajectories == 5 and next(more.eval_batches("test")).trajectories == 9
    assert next(more.eval_batches("test")).noise(0).shape == (100, 7, 9, 2)


def test_evaluation_adapts_first_at_inner_lr_then_at_eval_later_lr(monkeypatch):
    learner = MAMLTRPO(Identity(2), "reinforcement", 2, inner_lr=0.1, eval_later_lr=0.05, eval_inner_steps=3)
    rates = []
    adapt = learner.adapt

    def spy(*args, **kwargs):
        rates.append(args[7] if len(args) > 7 else kwargs.get("lr"))
        return adapt(*args, **kwargs)

    monkeypatch.setattr(learner, "adapt", spy)
    sampler = TaskSampler(Navigation2D(horizon=3), trajectories=2, test_tasks=2)
    scores = learner.score_batch(next(sampler.eval_batches("test")))
    assert set(rates) == {0.1, 0.05} and rates.index(0.05) > rates.index(0.1)
    assert rates.count(0.1) * 2 == rates.count(0.05)  # one first step, two later ones (each mapped over the tasks)
    assert scores["return"].shape == (2,)


def test_policy_gradient_step_matches_the_analytic_gradient_on_a_one_step_bandit():
    """One-step task: reward r(a) = -(a - g)^2 for a ~ N(mu, sigma^2), so dE[r]/dmu = -2 (mu - g) and
    dE[r]/dlog(sigma) = -2 sigma^2. The inner step is theta + lr * mean(grad log pi(a) r(a)): its change of the
    policy mean's bias and of the log standard deviation estimate those derivatives."""
    torch.manual_seed(0)
    learner = MAMLTRPO(Identity(1), "reinforcement", 1, inner_lr=1.0, init_std=0.5)
    with torch.no_grad():
        learner.head.weight.fill_(0.0)
        learner.head.bias.fill_(0.3)
    mu, sigma, goal, n = 0.3, 0.5, -0.2, 400_000
    actions = mu + sigma * torch.randn(n, 1, 1)
    rewards = -((actions[..., 0] - goal) ** 2)
    theta = {k: v.detach() for k, v in learner.theta().items()}
    adapted = learner.adapt(theta, torch.ones(n, 1, 1), actions, rewards, torch.ones(n, 1), 1, second_order=False)
    d_mu = (adapted["1.bias"] - theta["1.bias"]).item()
    d_log_sigma = (adapted["log_std"] - theta["log_std"]).item()
    assert d_mu == pytest.approx(-2 * (mu - goal), rel=0.03)
    assert d_log_sigma == pytest.approx(-2 * sigma**2, rel=0.03)


def test_gaussian_log_density_and_kl_against_closed_forms():
    mean, log_std, x = torch.tensor([0.2, -1.0]), torch.tensor([0.1, -0.3]), torch.tensor([0.5, -0.4])
    expected = sum(
        math.log(1 / (math.sqrt(2 * math.pi) * math.exp(s))) - (v - m) ** 2 / (2 * math.exp(2 * s))
        for m, s, v in zip(mean.tolist(), log_std.tolist(), x.tolist())
    )
    assert gaussian_log_prob(mean, log_std, x).item() == pytest.approx(expected, abs=1e-6)
    p = torch.distributions.Normal(mean, log_std.exp())
    q = torch.distributions.Normal(mean + 0.3, (log_std - 0.2).exp())
    kl = torch.distributions.kl_divergence(p, q).sum()
    assert gaussian_kl(mean, log_std, mean + 0.3, log_std - 0.2).item() == pytest.approx(kl.item(), abs=1e-6)


def test_returns_and_gae_against_hand_computation():
    rewards = torch.tensor([[[1.0, 2.0, 3.0]]])
    mask = torch.tensor([[[1.0, 1.0, 0.0]]])  # the trajectory ended after two steps
    assert discounted_returns(rewards, mask, 0.5).tolist() == [[[1.0 + 0.5 * 2.0, 2.0, 0.0]]]
    values = torch.tensor([[[0.5, 1.0, 7.0]]])
    # deltas: 1 + 0.5 * 1.0 - 0.5 = 1.0; 2 + 0 - 1.0 = 1.0 (V is 0 after the end); A_0 = 1 + 0.5 * 0.5 * 1 = 1.25
    assert gae(rewards, values, mask, 0.5, 0.5).tolist() == [[[1.25, 1.0, 0.0]]]


def test_linear_baseline_is_the_least_squares_fit():
    torch.manual_seed(0)
    obs = torch.randn(2, 3, 5, 2, dtype=torch.float64)
    returns = torch.randn(2, 3, 5, dtype=torch.float64)
    mask = torch.ones(2, 3, 5, dtype=torch.float64)
    mask[1, 2, 3:] = 0
    fitted = fit_linear_baseline(obs, returns, mask, reg=0.0)
    for task in range(2):
        keep = mask[task].reshape(-1) > 0
        x = baseline_features(obs[task], mask[task]).reshape(-1, 8)[keep]
        solution = torch.linalg.lstsq(x, returns[task].reshape(-1, 1)[keep]).solution
        expected = (x @ solution).reshape(-1)
        torch.testing.assert_close(fitted[task].reshape(-1)[keep], expected, rtol=1e-8, atol=1e-8)
        assert (fitted[task].reshape(-1)[~keep] == 0).all()
