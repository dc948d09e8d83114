"""Trust-region policy optimisation's step (Schulman et al. 2015) on a learner's parameters, as a pure procedure:
conjugate gradient on Hessian-vector products of the KL, the step scaled to the KL bound, and a backtracking line
search that accepts the first step that lowers the loss and keeps the KL within the bound."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from metalearn.execution import ranks


def flat(tensors: Sequence[Tensor]) -> Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def conjugate_gradient(hvp: Callable[[Tensor], Tensor], b: Tensor, iterations: int, tolerance: float = 1e-10) -> Tensor:
    """x with H x ~= b after `iterations` conjugate-gradient steps, H given only by its products hvp(v) = H v."""
    x = torch.zeros_like(b)
    r, p = b.clone(), b.clone()
    rr = r @ r
    for _ in range(iterations):
        hp = hvp(p)
        alpha = rr / (p @ hp)
        x = x + alpha * p
        r = r - alpha * hp
        new_rr = r @ r
        if new_rr < tolerance:
            break
        p = r + (new_rr / rr) * p
        rr = new_rr
    return x


def hessian_vector_product(kl: Tensor, params: Sequence[Tensor], damping: float) -> Callable[[Tensor], Tensor]:
    """v -> (H + damping I) v, H the Hessian of `kl` in `params` (flattened in their order), by differentiating
    the gradient's product with v (Pearlmutter's trick): one extra backward pass per product, H never formed."""
    kl_grad = flat(torch.autograd.grad(kl, params, create_graph=True))

    def hvp(v: Tensor) -> Tensor:
        return flat(torch.autograd.grad(kl_grad @ v, params, retain_graph=True)) + damping * v

    return hvp


@dataclass
class TRPOStep:
    """What a TRPO step did: the KL and loss after it, and the line-search steps tried (0 if none was accepted)."""

    kl: float
    loss: float
    accepted_at: int


def trpo_step(
    params: Sequence[nn.Parameter],
    loss_and_kl: Callable[[bool], tuple[Tensor, Tensor]],
    max_kl: float,
    cg_iterations: int,
    damping: float,
    line_search_steps: int,
    backtrack_ratio: float,
) -> TRPOStep:
    """One TRPO update of `params` in place.

    loss_and_kl(differentiable) -> (surrogate loss, mean KL from the policy that collected the data) at the current
    parameters; with differentiable=False it may skip building graphs (the line search only needs values).
    """
    loss, kl = loss_and_kl(True)
    # loss, KL, their gradients and curvature products are means over the meta-batch's tasks: where the tasks are
    # split over processes, each gives its tasks' mean and ranks.task_mean assembles the meta-batch's
    grads = ranks.task_mean([flat(torch.autograd.grad(loss, params, retain_graph=True))])[0]
    local_hvp = hessian_vector_product(kl, params, damping)
    hvp = lambda v: ranks.task_mean([local_hvp(v)])[0]
    direction = conjugate_gradient(hvp, grads.detach(), cg_iterations)
    curvature = 0.5 * (direction @ hvp(direction)).detach()
    step = direction * torch.sqrt(max_kl / curvature.clamp_min(1e-12)) if curvature > 0 else direction * 0
    old = [p.detach().clone() for p in params]
    old_loss = float(ranks.task_mean([loss.detach()])[0])
    size = 1.0
    for attempt in range(1, line_search_steps + 1):
        _assign(params, old, step, size)
        with torch.no_grad():
            new_loss, new_kl = ranks.task_mean(loss_and_kl(False))
        if float(new_loss) < old_loss and float(new_kl) < max_kl and math.isfinite(float(new_loss)):
            return TRPOStep(float(new_kl), float(new_loss), attempt)
        size *= backtrack_ratio
    _assign(params, old, step, 0.0)
    return TRPOStep(0.0, old_loss, 0)


def _assign(params: Sequence[nn.Parameter], old: Sequence[Tensor], step: Tensor, size: float) -> None:
    """params <- old - size * step (step flattened in the parameters' order)."""
    offset = 0
    with torch.no_grad():
        for p, o in zip(params, old):
            n = p.numel()
            p.copy_(o - size * step[offset : offset + n].view_as(p))
            offset += n
