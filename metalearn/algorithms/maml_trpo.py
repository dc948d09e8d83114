"""MAML for reinforcement learning with a TRPO outer update (Finn, Abbeel & Levine, ICML 2017, section 5.3)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from metalearn.algorithms.base import MetaLearner, StepOutput
from metalearn.algorithms.inner_loop import sgd_step
from metalearn.algorithms.policy_gradient import DISTRIBUTIONS, Trajectories, advantages, masked_mean, rollout
from metalearn.algorithms.trpo import trpo_step
from metalearn.execution import call_module, choose_path, inner_grads, map_fields
from metalearn.sampling.tasks import TaskBatch

Params = dict[str, Tensor]


@dataclass
class _Collected:
    """One meta-iteration's data: the tasks' pre-update trajectories and advantages (for the inner step), their
    post-update trajectories and advantages, and the post-update policy's outputs on them (the outer loss's old
    policy)."""

    before: Trajectories
    before_advantages: Tensor
    after: Trajectories
    after_advantages: Tensor
    old_outputs: tuple[Tensor, ...]


class MAMLTRPO(MetaLearner):
    """MAML-TRPO: meta-learn a Gaussian policy's initialisation so that one policy-gradient step on a few trajectories
    of a new task gives a good policy for it.

    Per task of a meta-batch: roll out `trajectories` trajectories with theta; one (or `inner_steps`) vanilla
    policy-gradient steps on them, advantages from a linear feature baseline (Duan et al. 2016), give theta'_i
    (through the step's gradient: second order unless `first_order`); roll out fresh trajectories with theta'_i. The
    outer objective is the TRPO surrogate mean_i E[pi_theta'_i(theta)(a|s) / pi_old(a|s) * A] on those, with GAE(lambda)
    advantages, maximised by TRPO: conjugate gradient on Hessian-vector products of the mean KL (through the inner
    step), a step to the KL bound `max_kl` and a backtracking line search. This update replaces the trainer's
    optimiser step (`outer_update`). Evaluation: the papers' protocol, the average return of fresh trajectories after
    0, 1, ..., `eval_inner_steps` policy-gradient steps, each step taken on the trajectories of the one before.

    The policy: the backbone (MAML: an MLP of two hidden layers of 100 ReLU units) with a linear layer for the action
    means and a learned log standard deviation per action dimension; the inner loop adapts all of it. For a family of
    discrete actions (`family.actions == "discrete"`, e.g. bandits) the linear layer gives the logits of a
    categorical policy instead. Where the family scores actions by their regret (`family.regret`), the regret is
    reported beside the return and is the headline metric (lower is better).

    Args:
        backbone: the policy's body, observations [N, D] -> [N, out_features].
        task: "reinforcement".
        n_way: the action dimensions (the policy's output size).
        inner_lr (float, 0.1), inner_steps (int, 1): the inner policy-gradient steps (MAML's navigation: 0.1, 1).
        eval_inner_steps (int, 3): adaptation steps in evaluation; the headline metric is the return after them.
        eval_later_lr (float | None, None): the step size of evaluation's adaptation steps after the first (Finn et
            al. 2017: 0.1 for the first, 0.05 for the later ones); None: inner_lr.
        first_order (bool, False): the inner step as a constant (no second-order terms).
        gamma (float, 0.99), gae_lambda (float, 1.0): the discount and GAE's lambda.
        max_kl (float, 0.01), cg_iterations (int, 10), cg_damping (float, 1e-5), line_search_steps (int, 15),
            backtrack_ratio (float, 0.8): TRPO's settings.
        init_std (float, 1.0): the policy's initial standard deviation.
        batching (str, "auto"): how the tasks are mapped (metalearn.execution): vmap, loop, threads or auto.
        family (object | None, None): the task family (run._build passes it): its `actions` kind ("continuous" when
            absent) and its `regret`, if it has one.

    Shapes: a TaskBatch of B tasks; trajectories [B, N, H, ...] (policy_gradient.Trajectories).

    References:
        Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks", ICML 2017.
        Schulman et al., "Trust Region Policy Optimization", ICML 2015.
        Duan et al., "Benchmarking Deep Reinforcement Learning for Continuous Control", ICML 2016.
    """

    tasks = ("reinforcement",)
    metric = "return"  # "regret" where the family has one (set per learner in __init__)

    def __init__(
        self,
        backbone: nn.Module,
        task: str,
        n_way: int,
        inner_lr: float = 0.1,
        inner_steps: int = 1,
        eval_inner_steps: int = 3,
        eval_later_lr: float | None = None,
        first_order: bool = False,
        gamma: float = 0.99,
        gae_lambda: float = 1.0,
        max_kl: float = 0.01,
        cg_iterations: int = 10,
        cg_damping: float = 1e-5,
        line_search_steps: int = 15,
        backtrack_ratio: float = 0.8,
        init_std: float = 1.0,
        batching: str = "auto",
        family: Any = None,
    ) -> None:
        super().__init__(backbone, task, n_way)
        self.head = nn.Linear(backbone.out_features, n_way)
        self.net = nn.Sequential(backbone, self.head)
        self.distribution = DISTRIBUTIONS[getattr(family, "actions", "continuous")]
        if self.distribution.kind == "continuous":
            self.log_std = nn.Parameter(torch.full((n_way,), math.log(init_std)))
        self.regret = getattr(family, "regret", None)
        self.metric = "regret" if self.regret is not None else "return"
        self.inner_lr, self.inner_steps, self.eval_inner_steps = inner_lr, inner_steps, eval_inner_steps
        self.eval_later_lr = inner_lr if eval_later_lr is None else eval_later_lr
        self.first_order = first_order
        self.gamma, self.gae_lambda = gamma, gae_lambda
        self.trpo = {
            "max_kl": max_kl,
            "cg_iterations": cg_iterations,
            "damping": cg_damping,
            "line_search_steps": line_search_steps,
            "backtrack_ratio": backtrack_ratio,
        }
        self.batching = batching
        self._collected: _Collected | None = None

    def path(self, purpose: str) -> str:
        return choose_path(self.batching, "transductive", self)

    # --- the policy, one task's parameters at a time ------------------------------------------------
    def theta(self, detach: bool = False) -> Params:
        """The policy's parameters by name (the network's, and `log_std` for a Gaussian policy)."""
        params = dict(self.net.named_parameters())
        if self.distribution.kind == "continuous":
            params["log_std"] = self.log_std
        return {n: p.detach() for n, p in params.items()} if detach else params

    def policy(self, params: Params, observations: Tensor) -> tuple[Tensor, ...]:
        """The action distribution's outputs at observations [..., D], each [..., A]: the means and log standard
        deviations of a Gaussian policy, or the logits of a categorical one."""
        net = {n: p for n, p in params.items() if n != "log_std"}
        flat = observations.reshape(-1, observations.shape[-1])
        out = call_module(self.net, net, flat).reshape(*observations.shape[:-1], -1)
        return (out, params["log_std"].expand_as(out)) if "log_std" in params else (out,)

    def adapt(
        self,
        params: Params,
        observations: Tensor,
        actions: Tensor,
        adv: Tensor,
        mask: Tensor,
        steps: int,
        second_order: bool,
        lr: float | None = None,
    ) -> Params:
        """`steps` vanilla policy-gradient steps for one task: params - lr * grad of -E[log pi(a|s) A] (lr: inner_lr
        unless given)."""
        lr = self.inner_lr if lr is None else lr

        def loss_fn(p: Params) -> Tensor:
            log_prob = self.distribution.log_prob(self.policy(p, observations), actions)
            return -masked_mean(log_prob * adv, mask, tuple(range(mask.dim())))

        for _ in range(steps):
            params = sgd_step(params, inner_grads(loss_fn, params, second_order), {n: lr for n in params})
        return params

    # --- mapped over the tasks --------------------------------------------------------------------
    def _map(self, fn, per_task: Params, *fields: Tensor) -> tuple[Tensor, ...]:  # type: ignore[no-untyped-def]
        names = list(per_task)

        def one(*values: Tensor) -> tuple[Tensor, ...]:
            return fn(dict(zip(names, values[: len(names)])), *values[len(names) :])

        return map_fields(one, (*per_task.values(), *fields), self.path("train"), self)

    def _stacked(self, params: Params, tasks: int) -> Params:
        return {n: p.expand(tasks, *p.shape) for n, p in params.items()}

    def _rollout(self, batch: TaskBatch, per_task: Params, index: int) -> Trajectories:
        def policy(states: Tensor) -> tuple[Tensor, ...]:
            return self._map(self.policy, per_task, states)

        return rollout(batch.env, batch.params, policy, self.distribution, batch.noise(index), batch.reset_seeds(index))

    def _adapted(
        self,
        per_task: Params,
        trajectories: Trajectories,
        adv: Tensor,
        steps: int,
        second_order: bool,
        lr: float | None = None,
    ) -> Params:
        t = trajectories
        adapted = self._map(
            lambda p, o, a, v, m: tuple(self.adapt(p, o, a, v, m, steps, second_order, lr).values()),
            per_task,
            t.observations,
            t.actions,
            adv,
            t.mask,
        )
        return dict(zip(per_task, adapted))

    # --- training -----------------------------------------------------------------------------------
    def meta_loss(self, batch: TaskBatch) -> StepOutput:
        tasks = len(batch)
        with torch.no_grad():
            theta = self._stacked(self.theta(detach=True), tasks)
            before = self._rollout(batch, theta, 0)
            before_adv = advantages(before, self.gamma, self.gae_lambda)
            adapted = self._adapted(theta, before, before_adv, self.inner_steps, second_order=False)
            after = self._rollout(batch, adapted, 1)
            after_adv = advantages(after, self.gamma, self.gae_lambda)
            old_outputs = self._map(self.policy, adapted, after.observations)
        self._collected = _Collected(before, before_adv, after, after_adv, old_outputs)
        loss = -masked_mean(after_adv, after.mask, (0, 1, 2))  # the surrogate at theta, where the ratio is 1
        metrics = {}
        for when, trajectories in (("before", before), ("after", after)):
            for name, values in self.scores(batch, trajectories).items():
                metrics[f"{name}_{when}"] = float(values.mean())
        return StepOutput(loss, metrics)

    def scores(self, batch: TaskBatch, trajectories: Trajectories) -> dict[str, Tensor]:
        """Each task's average return [B] of these trajectories, and its average regret where the family has one."""
        out = {"return": trajectories.returns_per_task()}
        if self.regret is not None:
            out["regret"] = self.regret(batch.params, trajectories.actions, trajectories.mask)
        return out

    def ratio_and_kl(self, collected: _Collected, differentiable: bool) -> tuple[Tensor, Tensor]:
        """The probability ratios pi_theta'(theta)(a|s) / pi_old(a|s) of the post-update steps [B, N, H] and the mean KL
        (old || new) at the current theta, the inner step recomputed from the pre-update trajectories (through its
        gradient where `differentiable` and second order)."""
        c = collected
        tasks = c.after.rewards.shape[0]
        adapted = self._adapted(
            self._stacked(self.theta(), tasks),
            c.before,
            c.before_advantages,
            self.inner_steps,
            second_order=differentiable and not self.first_order,
        )
        outputs = self._map(self.policy, adapted, c.after.observations)
        d = self.distribution
        ratio = torch.exp(d.log_prob(outputs, c.after.actions) - d.log_prob(c.old_outputs, c.after.actions))
        kl = masked_mean(d.kl(c.old_outputs, outputs), c.after.mask, (1, 2)).mean()
        return ratio, kl

    def surrogate(self, ratio: Tensor, collected: _Collected) -> Tensor:
        """The outer loss: -E[ratio * A] over each task's post-update steps, averaged over the tasks."""
        return -masked_mean(ratio * collected.after_advantages, collected.after.mask, (1, 2)).mean()

    def loss_and_kl(self, collected: _Collected, differentiable: bool) -> tuple[Tensor, Tensor]:
        """The surrogate loss and the mean KL(old || new) at the current theta (ratio_and_kl)."""
        ratio, kl = self.ratio_and_kl(collected, differentiable)
        return self.surrogate(ratio, collected), kl

    def outer_update(self, out: StepOutput, optimizer: torch.optim.Optimizer, grad_clip: float | None) -> None:
        """A TRPO step on theta from the trajectories of the last meta_loss (the optimiser is not used)."""
        if self._collected is None:
            raise RuntimeError("MAMLTRPO.outer_update needs a meta_loss call first")
        collected, self._collected = self._collected, None
        params = [p for p in self.parameters() if p.requires_grad]
        step = trpo_step(params, lambda differentiable: self.loss_and_kl(collected, differentiable), **self.trpo)
        for p in params:
            p.grad = None
        out.metrics.update({"kl": step.kl, "line_search_step": float(step.accepted_at)})

    # --- evaluation ---------------------------------------------------------------------------------
    def score_batch(self, batch: TaskBatch) -> dict[str, Tensor]:  # type: ignore[override]
        """The average return of each task [B] (and its regret, where the family has one) after 0, 1, ...,
        eval_inner_steps adaptation steps, each step on the fresh trajectories of the policy before it; the metric
        (`return` or `regret`) is the one after the last."""
        per_task = self._stacked(self.theta(detach=True), len(batch))
        curve = {}
        for step in range(self.eval_inner_steps + 1):
            trajectories = self._rollout(batch, per_task, step)
            for name, values in self.scores(batch, trajectories).items():
                curve[f"{name}_after_{step}_steps"] = values
            if step < self.eval_inner_steps:
                adv = advantages(trajectories, self.gamma, self.gae_lambda)
                lr = self.inner_lr if step == 0 else self.eval_later_lr
                per_task = self._adapted(per_task, trajectories, adv, 1, second_order=False, lr=lr)
        return {self.metric: curve[f"{self.metric}_after_{self.eval_inner_steps}_steps"], **curve}
