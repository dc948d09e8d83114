"""Policy-gradient pieces for meta-RL, as pure tensor functions: vectorised rollouts, discounted returns, the linear
feature baseline, generalised advantage estimation, and the two action distributions (a diagonal Gaussian for
continuous actions, a categorical for discrete ones) with their log-densities and KLs.

Trajectories of B tasks x N trajectories x H steps are tensors [B, N, H, ...]; `mask` [B, N, H] is 1 for the steps
that happened (0 after a trajectory ended early), and every mean over steps is a masked mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

#: a policy: observations [B, N, D] -> its action distribution's outputs, each [B, N, A] (ActionDistribution)
Policy = Callable[[Tensor], tuple[Tensor, ...]]


@dataclass
class Trajectories:
    """observations [B, N, H, D], actions [B, N, H, A], rewards and mask [B, N, H]."""

    observations: Tensor
    actions: Tensor
    rewards: Tensor
    mask: Tensor

    def returns_per_task(self) -> Tensor:
        """The average undiscounted return of each task's trajectories [B]: the papers' "average return"."""
        return self.rewards.sum(-1).mean(-1)


def rollout(
    env: Any,
    goals: Tensor,
    policy: Policy,
    distribution: "ActionDistribution",
    noise: Tensor,
    seeds: Tensor | None = None,
) -> Trajectories:
    """Trajectories of `env.horizon` steps in each task (goals [B, P]) with actions drawn from `policy`'s
    `distribution` by the standard normal `noise` [H, B, N, A] (N trajectories per task), every task and trajectory
    stepping at once; seeds [B] seed the environments' random draws (initial states, stochastic rewards)."""
    state, done = env.reset(goals, noise.shape[2], seeds)
    observations, actions, rewards, masks = [], [], [], []
    for t in range(env.horizon):
        action = distribution.sample(policy(state), noise[t])
        masks.append((~done).to(state.dtype))
        observations.append(state)
        actions.append(action)
        state, reward, done = env.step(state, action, goals, done)
        rewards.append(reward)
    stack = lambda xs: torch.stack(xs, dim=2)  # noqa: E731
    return Trajectories(stack(observations), stack(actions), stack(rewards), stack(masks))


def gaussian_log_prob(mean: Tensor, log_std: Tensor, actions: Tensor) -> Tensor:
    """log N(actions; mean, diag(exp(log_std))^2), summed over the action dimensions: [..., A] -> [...]."""
    z = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def gaussian_kl(mean_p: Tensor, log_std_p: Tensor, mean_q: Tensor, log_std_q: Tensor) -> Tensor:
    """KL(p || q) of diagonal Gaussians, summed over the action dimensions: [..., A] -> [...]."""
    var_p, var_q = torch.exp(2 * log_std_p), torch.exp(2 * log_std_q)
    return (log_std_q - log_std_p + (var_p + (mean_p - mean_q).pow(2)) / (2 * var_q) - 0.5).sum(-1)


def categorical_log_prob(logits: Tensor, actions: Tensor) -> Tensor:
    """log p(actions) under softmax(logits), for one-hot actions: [..., A] -> [...]."""
    return (torch.log_softmax(logits, -1) * actions).sum(-1)


def categorical_kl(logits_p: Tensor, logits_q: Tensor) -> Tensor:
    """KL(p || q) of the categoricals softmax(logits_p), softmax(logits_q): [..., A] -> [...]."""
    log_p, log_q = torch.log_softmax(logits_p, -1), torch.log_softmax(logits_q, -1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


class ActionDistribution:
    """How a policy's outputs become actions: `sample` (from standard normal noise, so a rollout is fixed by its
    seed), `log_prob` and `kl`. Outputs are a tuple of tensors [..., A]; actions are [..., A]."""

    #: "continuous" or "discrete": the action spaces the distribution serves
    kind: str

    def sample(self, outputs: tuple[Tensor, ...], noise: Tensor) -> Tensor:
        raise NotImplementedError

    def log_prob(self, outputs: tuple[Tensor, ...], actions: Tensor) -> Tensor:
        raise NotImplementedError

    def kl(self, old: tuple[Tensor, ...], new: tuple[Tensor, ...]) -> Tensor:
        raise NotImplementedError


class DiagonalGaussian(ActionDistribution):
    """Outputs (means, log standard deviations), each [..., A]; an action is mean + std * noise."""

    kind = "continuous"

    def sample(self, outputs: tuple[Tensor, ...], noise: Tensor) -> Tensor:
        mean, log_std = outputs
        return mean + log_std.exp() * noise

    def log_prob(self, outputs: tuple[Tensor, ...], actions: Tensor) -> Tensor:
        return gaussian_log_prob(*outputs, actions)

    def kl(self, old: tuple[Tensor, ...], new: tuple[Tensor, ...]) -> Tensor:
        return gaussian_kl(*old, *new)


class Categorical(ActionDistribution):
    """Outputs (logits,) [..., A]; an action is the one-hot vector of argmax(logits + Gumbel noise) (the Gumbel-max
    trick, exact sampling from softmax(logits)), the Gumbel noise -log(-log u) made from the standard normal noise
    through u = Phi(noise)."""

    kind = "discrete"

    def sample(self, outputs: tuple[Tensor, ...], noise: Tensor) -> Tensor:
        (logits,) = outputs
        uniform = torch.special.ndtr(noise.to(logits.dtype)).clamp(1e-12, 1 - 1e-7)
        choice = (logits - torch.log(-torch.log(uniform))).argmax(-1)
        return torch.nn.functional.one_hot(choice, logits.shape[-1]).to(logits.dtype)

    def log_prob(self, outputs: tuple[Tensor, ...], actions: Tensor) -> Tensor:
        return categorical_log_prob(*outputs, actions)

    def kl(self, old: tuple[Tensor, ...], new: tuple[Tensor, ...]) -> Tensor:
        return categorical_kl(*old, *new)


DISTRIBUTIONS: dict[str, ActionDistribution] = {"continuous": DiagonalGaussian(), "discrete": Categorical()}


def masked_mean(values: Tensor, mask: Tensor, dims: tuple[int, ...]) -> Tensor:
    """The mean of `values` over `dims`, counting only the steps where mask is 1."""
    return (values * mask).sum(dims) / mask.sum(dims).clamp_min(1)


def discounted_sum(values: Tensor, mask: Tensor, factor: float) -> Tensor:
    """S_t = values_t + factor * S_{t+1} within each trajectory (nothing carried across a step with mask 0), for
    values already zero where mask is 0: [B, N, H] -> [B, N, H]."""
    out = torch.zeros_like(values)
    running = torch.zeros_like(values[..., 0])
    for t in reversed(range(values.shape[-1])):
        running = values[..., t] + factor * running * mask[..., t]
        out[..., t] = running
    return out


def discounted_returns(rewards: Tensor, mask: Tensor, gamma: float) -> Tensor:
    """R_t = sum_k gamma^k r_{t+k} within each trajectory: [B, N, H] -> [B, N, H]."""
    return discounted_sum(rewards * mask, mask, gamma)


def baseline_features(observations: Tensor, mask: Tensor) -> Tensor:
    """The linear baseline's features (Duan et al. 2016, rllab's LinearFeatureBaseline): the observation clipped to
    [-10, 10], its square, t/100, (t/100)^2, (t/100)^3 and 1, zero on the steps that did not happen: [..., H, F]."""
    h = observations.shape[-2]
    obs = observations.clamp(-10, 10)
    time = (torch.arange(h, device=obs.device, dtype=obs.dtype) / 100.0).expand(*obs.shape[:-1])[..., None]
    ones = torch.ones_like(time)
    features = torch.cat([obs, obs.pow(2), time, time.pow(2), time.pow(3), ones], dim=-1)
    return features * mask[..., None]


def fit_linear_baseline(observations: Tensor, returns: Tensor, mask: Tensor, reg: float = 1e-5) -> Tensor:
    """Per task, the least-squares fit of the returns on the baseline features (ridge `reg`, raised tenfold while the
    system is singular, as rllab does), evaluated on the task's steps: [B, N, H] values."""
    features = baseline_features(observations, mask)
    x = features.reshape(features.shape[0], -1, features.shape[-1])
    y = (returns * mask).reshape(features.shape[0], -1, 1)
    xtx, xty = x.transpose(1, 2) @ x, x.transpose(1, 2) @ y
    eye = torch.eye(xtx.shape[-1], dtype=xtx.dtype, device=xtx.device)
    for _ in range(5):
        weights, info = torch.linalg.solve_ex(xtx + reg * eye, xty)
        if bool((info == 0).all()) and bool(torch.isfinite(weights).all()):
            break
        reg *= 10
    return (x @ weights).reshape(returns.shape) * mask


def gae(rewards: Tensor, values: Tensor, mask: Tensor, gamma: float, lam: float) -> Tensor:
    """Generalised advantage estimates (Schulman et al. 2016): A_t = sum_k (gamma lam)^k delta_{t+k} with
    delta_t = r_t + gamma V_{t+1} - V_t, V = 0 after a trajectory's end: [B, N, H]."""
    next_values = torch.cat([values[..., 1:] * mask[..., 1:], torch.zeros_like(values[..., :1])], dim=-1)
    deltas = (rewards + gamma * next_values - values) * mask
    return discounted_sum(deltas, mask, gamma * lam)


def normalised(advantages: Tensor, mask: Tensor) -> Tensor:
    """Advantages standardised per task over its steps (mean 0, standard deviation 1): [B, N, H]."""
    dims = (1, 2)
    mean = masked_mean(advantages, mask, dims)[:, None, None]
    var = masked_mean((advantages - mean).pow(2), mask, dims)[:, None, None]
    return (advantages - mean) / (var.sqrt() + 1e-8) * mask


def advantages(trajectories: Trajectories, gamma: float, lam: float) -> Tensor:
    """The normalised GAE(lam) advantages of each task's trajectories against its own linear baseline."""
    t = trajectories
    values = fit_linear_baseline(t.observations, discounted_returns(t.rewards, t.mask, gamma), t.mask)
    return normalised(gae(t.rewards, values, t.mask, gamma, lam), t.mask)
