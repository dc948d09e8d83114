"""MAML for reinforcement learning with a clipped-surrogate (PPO) outer update, as in ProMP's MAML baseline."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from metalearn.algorithms.base import StepOutput
from metalearn.algorithms.maml_trpo import MAMLTRPO, _Collected
from metalearn.algorithms.policy_gradient import masked_mean


class MAMLPPO(MAMLTRPO):
    """MAML-PPO: MAML-TRPO's inner loop and data, with the outer update taken by `ppo_epochs` steps of the trainer's
    optimiser on PPO's clipped surrogate -E[min(r A, clip(r, 1 - clip_ratio, 1 + clip_ratio) A)] (Schulman et al.
    2017), the inner step recomputed at each step (through its gradient unless `first_order`), on the same
    trajectories. Rothfuss et al. (ProMP, 2019) meta-train MAML this way.

    Args:
        backbone, task, n_way, inner_lr, inner_steps, eval_inner_steps, eval_later_lr, first_order, gamma,
            gae_lambda, init_std, batching, family: as MAMLTRPO.
        ppo_epochs (int, 5): optimiser steps per meta-iteration on the clipped surrogate.
        clip_ratio (float, 0.2): the probability ratio's clipping range.

    References:
        Schulman et al., "Proximal Policy Optimization Algorithms", arXiv:1707.06347, 2017.
        Rothfuss et al., "ProMP: Proximal Meta-Policy Search", ICLR 2019.
    """

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
        ppo_epochs: int = 5,
        clip_ratio: float = 0.2,
        init_std: float = 1.0,
        batching: str = "auto",
        family: Any = None,
    ) -> None:
        super().__init__(
            backbone,
            task,
            n_way,
            inner_lr=inner_lr,
            inner_steps=inner_steps,
            eval_inner_steps=eval_inner_steps,
            eval_later_lr=eval_later_lr,
            first_order=first_order,
            gamma=gamma,
            gae_lambda=gae_lambda,
            init_std=init_std,
            batching=batching,
            family=family,
        )
        self.ppo_epochs, self.clip_ratio = ppo_epochs, clip_ratio

    def surrogate(self, ratio: Tensor, collected: _Collected) -> Tensor:
        adv = collected.after_advantages
        clipped = torch.minimum(ratio * adv, ratio.clamp(1 - self.clip_ratio, 1 + self.clip_ratio) * adv)
        return -masked_mean(clipped, collected.after.mask, (1, 2)).mean()

    def outer_update(self, out: StepOutput, optimizer: torch.optim.Optimizer, grad_clip: float | None) -> None:
        """`ppo_epochs` optimiser steps on the clipped surrogate of the last meta_loss's trajectories."""
        if self._collected is None:
            raise RuntimeError("MAMLPPO.outer_update needs a meta_loss call first")
        collected, self._collected = self._collected, None
        for _ in range(self.ppo_epochs):
            loss, _ = self.loss_and_kl(collected, differentiable=True)
            out.loss = loss.detach()
            super(MAMLTRPO, self).outer_update(StepOutput(loss), optimizer, grad_clip)
        with torch.no_grad():
            _, kl = self.loss_and_kl(collected, differentiable=False)
        out.metrics["kl"] = float(kl)
