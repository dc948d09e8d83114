"""Inner-loop update rules of the gradient-based family, written as pure functions of parameter dicts."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

Params = dict[str, Tensor]


def sgd_step(params: Params, grads: Params, lrs: dict[str, float | Tensor]) -> Params:
    """params - lr * grad, with one learning rate (a float or a tensor) per parameter name."""
    return {n: p - lrs[n] * grads[n] for n, p in params.items()}


def adam_step(
    params: Params,
    grads: Params,
    state: dict[str, tuple[Tensor, Tensor]],
    step: int,
    lr: float,
    betas: tuple[float, float],
    eps: float = 1e-8,
) -> tuple[Params, dict[str, tuple[Tensor, Tensor]]]:
    """One functional Adam step (Kingma & Ba 2015), bias-corrected; `step` counts from 1."""
    b1, b2 = betas
    new_params, new_state = {}, {}
    for n, p in params.items():
        g = grads[n]
        m, v = state.get(n, (torch.zeros_like(g), torch.zeros_like(g)))
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**step), v / (1 - b2**step)
        new_params[n] = p - lr * m_hat / (v_hat.sqrt() + eps)
        new_state[n] = (m, v)
    return new_params, new_state


def checkpointed(fn: Callable[..., tuple[Tensor, ...]], *args: Tensor) -> tuple[Tensor, ...]:
    """Run fn(*args) without keeping its activations; they are recomputed in the backward pass.

    Used around each second-order inner step (forward + create_graph gradient), so memory grows with the
    parameters per step rather than with every activation of every step.
    """
    return checkpoint(fn, *args, use_reentrant=False)
