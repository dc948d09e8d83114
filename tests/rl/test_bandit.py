"""The bandit task family and the categorical policy: pulls, rewards and regret against hand computations, the
categorical log-density, KL and sampling against torch.distributions, the policy-gradient step against the analytic
gradient, and meta-training that makes one step of adaptation pay."""

from __future__ import annotations

import pytest
import torch

from metalearn.algorithms.maml_trpo import MAMLTRPO
from metalearn.algorithms.policy_gradient import Categorical, categorical_kl, categorical_log_prob
from metalearn.data.bandit import Bandit
from metalearn.models.mlp import MLP
from metalearn.sampling.tasks import TaskSampler
from tests.support import Identity


def test_pulls_are_rewarded_with_the_arms_probabilities_and_scored_by_their_regret():
    env = Bandit(arms=3, horizon=2)
    tasks = torch.tensor([[0.2, 0.9, 0.5]])
    obs, done = env.reset(tasks, 2, seeds=torch.tensor([7]))
    draws = torch.rand(2, 2, generator=torch.Generator().manual_seed(7))  # the rollout's reward noise [N, H]
    assert torch.equal(obs, torch.ones(1, 2, 1)) and not done.any()
    first = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])  # trajectory 0 pulls arm 0, trajectory 1 arm 1
    second = torch.tensor([[[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]])
    _, r1, _ = env.step(obs, first, tasks, done)
    _, r2, _ = env.step(obs, second, tasks, done)
    assert r1[0].tolist() == [float(draws[0, 0] < 0.2), float(draws[1, 0] < 0.9)]
    assert r2[0].tolist() == [float(draws[0, 1] < 0.5), float(draws[1, 1] < 0.9)]
    with pytest.raises(RuntimeError, match="needs a reset"):
        env.step(obs, first, tasks, done)
    actions = torch.stack([first, second], dim=2)  # [B, N, H, k]
    # trajectory 0 gives up 0.9 - 0.2 and 0.9 - 0.5, trajectory 1 nothing: (0.7 + 0.4 + 0) / 2
    assert env.regret(tasks, actions, torch.ones(1, 2, 2)).item() == pytest.approx(0.55)
    again, _ = env.reset(tasks, 2, seeds=torch.tensor([7]))
    assert torch.equal(env.step(again, first, tasks, done)[1], r1)  # a rollout is fixed by its seed


def test_categorical_log_density_kl_and_gumbel_sampling_against_torch_distributions():
    logits, other = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([0.0, 0.3, -0.2])
    p, q = torch.distributions.Categorical(logits=logits), torch.distributions.Categorical(logits=other)
    for arm in range(3):
        one_hot = torch.nn.functional.one_hot(torch.tensor(arm), 3).float()
        assert categorical_log_prob(logits, one_hot).item() == pytest.approx(p.log_prob(torch.tensor(arm)).item())
    assert categorical_kl(logits, other).item() == pytest.approx(torch.distributions.kl_divergence(p, q).item())
    noise = torch.randn(200_000, 3, generator=torch.Generator().manual_seed(0))
    actions = Categorical().sample((logits.expand(200_000, 3),), noise)
    assert torch.equal(actions.sum(-1), torch.ones(200_000))  # one-hot
    assert actions.mean(0).tolist() == pytest.approx(p.probs.tolist(), abs=0.005)


def test_policy_gradient_step_matches_the_analytic_gradient_of_a_one_step_bandit():
    """A categorical policy softmax(z) over arms of mean rewards mu: dE[r]/dz_j = p_j (mu_j - sum_k p_k mu_k). The
    inner step z + lr * mean(grad log pi(a) r(a)) with lr 1 changes the logits' bias by that estimate."""
    torch.manual_seed(0)
    learner = MAMLTRPO(Identity(1), "reinforcement", 3, inner_lr=1.0, family=Bandit(arms=3, horizon=1))
    assert "log_std" not in learner.theta()
    z, mu, n = torch.tensor([0.2, -0.4, 0.1]), torch.tensor([0.9, 0.1, 0.4]), 400_000
    with torch.no_grad():
        learner.head.weight.fill_(0.0)
        learner.head.bias.copy_(z)
    probs = torch.softmax(z, 0)
    actions = torch.nn.functional.one_hot(torch.multinomial(probs, n, replacement=True), 3).float()[:, None, :]
    rewards = torch.bernoulli((actions * mu).sum(-1))
    theta = learner.theta(detach=True)
    adapted = learner.adapt(theta, torch.ones(n, 1, 1), actions, rewards, torch.ones(n, 1), 1, second_order=False)
    expected = probs * (mu - (probs * mu).sum())
    assert (adapted["1.bias"] - theta["1.bias"]).tolist() == pytest.approx(expected.tolist(), abs=0.004)


def _regret_after(learner: MAMLTRPO, sampler: TaskSampler, steps: int) -> float:
    scores = [learner.score_batch(batch)[f"regret_after_{steps}_steps"] for batch in sampler.eval_batches("test")]
    return float(torch.cat(scores).mean())


def test_meta_training_on_bandits_makes_one_step_of_adaptation_pay():
    torch.manual_seed(0)
    family = Bandit(arms=5, horizon=10)
    sampler = TaskSampler(family, tasks_per_batch=10, trajectories=10, test_tasks=40)
    learner = MAMLTRPO(MLP((1,), [100, 100], activation="tanh"), "reinforcement", 5, family=family, eval_inner_steps=1)
    assert learner.metric == "regret" and not learner.higher_is_better
    untrained = _regret_after(learner, sampler, 1)
    # a uniform policy gives up E[max of 5 U(0,1)] - 1/2 = 1/3 per pull: 10/3 per trajectory of 10 pulls
    assert _regret_after(learner, sampler, 0) == pytest.approx(10 / 3, abs=0.35)
    for _ in range(15):
        out = learner.meta_loss(sampler.train_batch())
        learner.outer_update(out, None, None)
    assert {"return_before", "regret_before", "return_after", "regret_after", "kl"} <= out.metrics.keys()
    trained = _regret_after(learner, sampler, 1)
    assert trained < 0.75 * untrained, (untrained, trained)  # measured: 1.84 against 3.09
