"""torch.func pieces shared by the gradient-based family (MAML, FOMAML, ANIL, Meta-SGD, MAML++, Reptile).

Interchangeable ways to run the tasks of a meta-batch (`algorithm.batching`):
  loop: one task after another, inner gradients by torch.autograd.grad (the reference path);
  threads: the loop's per-task function, the tasks spread over worker threads with one intra-op thread
        each (task_threads.py); results in task order, so runs repeat bit for bit;
  vmap: the same per-task function mapped over the task dimension with torch.func.vmap, inner
        gradients by torch.func.grad (Finn et al.'s MAML written as in the torch.func maml-omniglot
        example). BatchNorm must then be transductive (each task's own batch statistics, no running
        statistics), as torch.func's "Patching Batch Norm" note requires; threads need it too, as
        concurrent tasks would update shared running statistics;
  auto: vmap on CUDA and for networks without convolutions; for convolutional networks threads on a
        CPU with more than one torch thread, and the loop otherwise. A fixed rule taken from
        measurement (README, Performance): on an NVIDIA H200 at meta-batch 32 with Conv4, vmap was 9.9-10.4x
        (MAML) and 5.1-5.7x (FOMAML) faster than the loop; on 2 CPU cores vmap was the slowest for Conv4 and
        threads faster than the loop (1.46 s against 1.77 s), while for the sinusoid MLP vmap was 2.3x
        to 4.8x faster than the loop across the family. A rule rather than timing at run time, so that runs with the
        same seed, and resumed runs, take the same path and compute the same numbers.

First-order inner steps take the gradient at *detached* parameters, so no second-order graph is ever
built (the pitfall of computing create_graph=True and detaching afterwards).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode
from torch.utils.checkpoint import checkpoint

from metalearn.algorithms import task_threads
from metalearn.errors import ConfigError
from metalearn.sampling.episode import EpisodeBatch

Params = dict[str, Tensor]
BATCHING = ("vmap", "loop", "threads", "auto")


def resolve_batching(batching: str, batch_norm: str = "transductive", prefix: str = "algorithm") -> str:
    """Check the setting; `auto` stays `auto` (see auto_path) unless only the loop is possible."""
    if batching not in BATCHING:
        raise ConfigError(f"{prefix}.batching={batching!r} is invalid: must be one of {', '.join(BATCHING)}")
    if batching == "auto" and batch_norm != "transductive":
        return "loop"
    if batching in ("vmap", "threads") and batch_norm != "transductive":
        raise ConfigError(
            f"{prefix}.batching={batching} needs {prefix}.batch_norm=transductive (per-task batch statistics, no running "
            f"statistics); set {prefix}.batch_norm=transductive or {prefix}.batching=loop"
        )
    return batching


def check_checkpoint_inner(checkpoint_inner: bool, batching: str, prefix: str = "algorithm") -> None:
    """Activation checkpointing of the inner loop runs on the loop and threads paths only."""
    if checkpoint_inner and batching == "vmap":
        raise ConfigError(
            f"{prefix}.checkpoint_inner=true needs {prefix}.batching=loop, threads or auto: torch.func transforms do not "
            "support the saved-tensor hooks that activation checkpointing uses"
        )


def auto_path(device: torch.device, network: nn.Module) -> str:
    """The path `batching=auto` takes for `network` on `device` (see the module docstring for the measurements)."""
    convolutional = any(isinstance(m, nn.modules.conv._ConvNd) for m in network.modules())
    if device.type == "cuda" or not convolutional:
        return "vmap"
    return "threads" if device.type == "cpu" and task_threads.workers() > 1 else "loop"


class BatchingChoice:
    """Mixin for learners with `batching` and `batch_norm` settings: which path runs the tasks."""

    batching: str
    batch_norm: str

    def pick_batching(self, purpose: str) -> str:
        """ "vmap" or "loop" for `purpose` ("train" or "eval")."""
        batching = resolve_batching(self.batching, self.batch_norm)
        if batching != "auto":
            return batching
        return auto_path(next(self.parameters()).device, self)  # type: ignore[attr-defined, arg-type]


def inner_grads(loss_fn: Callable[[Params], Tensor], params: Params, second_order: bool, functional: bool) -> Params:
    """Gradient of `loss_fn` at `params`.

    second_order=True keeps the graph of the gradient (create_graph=True, or torch.func.grad whose result
    stays differentiable); False takes the gradient at detached parameters, so the result is a constant.
    """
    if functional:
        start = params if second_order else {n: p.detach() for n, p in params.items()}
        return torch.func.grad(loss_fn)(start)
    if second_order:
        grads = torch.autograd.grad(loss_fn(params), list(params.values()), create_graph=True)
        return dict(zip(params, grads))
    with torch.enable_grad():
        start = {n: p.detach().requires_grad_() for n, p in params.items()}
        grads = torch.autograd.grad(loss_fn(start), list(start.values()))
    return dict(zip(params, grads))


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


def checkpointed(fn: Callable[..., Params], *args: Tensor) -> Params:
    """Run fn(*args) without keeping its activations; they are recomputed in the backward pass.

    Used around each second-order inner step (forward + create_graph gradient), so memory grows with the
    parameters per step rather than with every activation of every step.
    """
    return checkpoint(fn, *args, use_reentrant=False)


class BatchStatsNorm(TorchFunctionMode):
    """Computes batch-statistics BatchNorm from elementary ops while active.

    Why: in torch 2.14, second-order gradients through F.batch_norm with affine weights under vmap are
    wrong (the conv weight/bias meta-gradients differ from the loop path and from finite differences);
    mean/var/rsqrt give the exact loop-path values. Calls with running statistics pass through.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if func is not F.batch_norm or args[1] is not None:
            return func(*args, **kwargs)
        x = args[0]
        names = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")
        bound = {**dict(zip(names, args)), **kwargs}
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        mean, var = x.mean(dims, keepdim=True), x.var(dims, unbiased=False, keepdim=True)
        y = (x - mean) * torch.rsqrt(var + bound.get("eps", 1e-5))
        if bound.get("weight") is not None:
            y = y * bound["weight"].reshape(shape)
        if bound.get("bias") is not None:
            y = y + bound["bias"].reshape(shape)
        return y


def map_tasks(
    fn: Callable[..., Sequence[Tensor]], batch: EpisodeBatch, batching: str, root: nn.Module | None = None
) -> tuple[Tensor, ...]:
    """fn(support_x, support_y, query_x, query_y) -> tensors, for every task; results stacked on dim 0.

    `root`: the learner, whose functional calls each worker of `threads` makes on a copy of its own.
    """
    fields = (batch.support_x, batch.support_y, batch.query_x, batch.query_y)
    if batching == "vmap":
        with BatchStatsNorm():
            return tuple(torch.func.vmap(fn, randomness="different")(*fields))
    if batching == "threads":
        if root is None:
            raise ValueError("map_tasks(batching='threads') needs the module whose calls it must isolate")
        outs = task_threads.map_threads(fn, fields, root)
    else:
        outs = [fn(*(f[i] for f in fields)) for i in range(len(batch))]
    return tuple(torch.stack(column) for column in zip(*outs))
