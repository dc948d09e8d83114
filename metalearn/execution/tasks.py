"""Mapping a per-task function over the tasks of a meta-batch, on any of the three paths.

A learner writes `fn(support_x, support_y, query_x, query_y) -> tensors` for one task, as in the
torch.func MAML example; `map_tasks` runs it for every task of an EpisodeBatch and stacks the results.
Inside `fn`, `inner_grads` and `call_module` work on every path: the loop (torch.autograd), vmap
(torch.func.grad under torch.func.vmap, with the BatchNorm workaround active) and threads (each worker on
its own copy of the modules). First-order inner gradients are taken at *detached* parameters, so no
second-order graph is ever built (the pitfall of computing create_graph=True and detaching afterwards).
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
from torch import Tensor, nn

from metalearn.episode import EpisodeBatch
from metalearn.execution import compiled, threads
from metalearn.execution.threads import call_module
from metalearn.execution.vmap_batch_norm import BatchStatsNorm

Params = dict[str, Tensor]
TaskFn = Callable[..., Sequence[Tensor]]

# whether the per-task function runs under torch.func.vmap, where torch.autograd.grad cannot be used
_FUNCTIONAL: ContextVar[bool] = ContextVar("metalearn_functional", default=False)

__all__ = [
    "TaskGradients",
    "call_module",
    "functional_gradients",
    "inner_grads",
    "map_fields",
    "map_task_gradients",
    "map_tasks",
]


@contextmanager
def functional_gradients() -> Iterator[None]:
    """While active, `inner_grads` differentiates through torch.func.grad instead of torch.autograd: what
    torch.func.vmap requires, and what lets torch.compile trace a second-order inner step as one graph."""
    token = _FUNCTIONAL.set(True)
    try:
        yield
    finally:
        _FUNCTIONAL.reset(token)


def inner_grads(loss_fn: Callable[[Params], Tensor], params: Params, second_order: bool) -> Params:
    """Gradient of `loss_fn` at `params`, by the means the current path allows.

    second_order=True keeps the graph of the gradient (create_graph=True, or torch.func.grad whose result
    stays differentiable); False takes the gradient at detached parameters, so the result is a constant.
    """
    if _FUNCTIONAL.get():
        start = params if second_order else {n: p.detach() for n, p in params.items()}
        return torch.func.grad(loss_fn)(start)
    if second_order:
        grads = torch.autograd.grad(loss_fn(params), list(params.values()), create_graph=True)
        return dict(zip(params, grads))
    with torch.enable_grad():
        start = {n: p.detach().requires_grad_() for n, p in params.items()}
        grads = torch.autograd.grad(loss_fn(start), list(start.values()))
    return dict(zip(params, grads))


def _per_task(
    fn: TaskFn, fields: Sequence[Tensor], path: str, root: nn.Module
) -> list[Sequence[Tensor]] | tuple[Tensor, ...]:
    if path == "vmap":
        with functional_gradients(), BatchStatsNorm():
            return tuple(compiled.vmap(fn, getattr(root, "compile_backend", None))(*fields))
    if path == "threads":
        return threads.map_threads(fn, fields, root)
    if path != "loop":
        raise ValueError(f"unknown execution path {path!r}: vmap, loop or threads")
    return [fn(*(f[i] for f in fields)) for i in range(len(fields[0]))]


def map_fields(fn: TaskFn, fields: Sequence[Tensor], path: str, root: nn.Module) -> tuple[Tensor, ...]:
    """fn(*(field[i] for field in fields)) -> tensors, for every task i; results stacked on dim 0.

    fields: per-task tensors with the tasks on dim 0 (a task's data, or its own parameters).
    root: the learner, whose functional calls each worker of `threads` makes on a copy of its own.
    """
    outs = _per_task(fn, fields, path, root)
    if isinstance(outs, tuple):
        return outs
    return tuple(torch.stack(column) for column in zip(*outs))


def map_tasks(fn: TaskFn, batch: EpisodeBatch, path: str, root: nn.Module) -> tuple[Tensor, ...]:
    """map_fields over an episode batch: fn(support_x, support_y, query_x, query_y) for every task."""
    return map_fields(fn, (batch.support_x, batch.support_y, batch.query_x, batch.query_y), path, root)


@dataclass
class TaskGradients:
    """What `map_task_gradients` returns.

    loss: the mean of the tasks' first outputs (differentiable unless `grads` is given).
    outputs: the tasks' other outputs, each stacked on dim 0.
    grads: on `threads`, the meta-gradient already computed, one entry per root.parameters() (None where a
      parameter has none); None on the other paths, where the caller backpropagates `loss`.
    """

    loss: Tensor
    outputs: tuple[Tensor, ...]
    grads: list[Tensor | None] | None


def map_task_gradients(fn: TaskFn, batch: EpisodeBatch, path: str, root: nn.Module) -> TaskGradients:
    """map_tasks for a meta-loss: `fn` returns (loss, *outputs) for one task.

    On `threads` each task is differentiated where it runs (so a worker holds one task's graph, not the
    meta-batch's) and the gradients are averaged in task order, so results do not depend on the schedule.
    """
    if path != "threads":
        loss, *outputs = map_tasks(fn, batch, path, root)
        return TaskGradients(loss.mean(), tuple(outputs), None)
    params = list(root.parameters())
    trained = [p for p in params if p.requires_grad]

    def one(*task: Tensor) -> tuple[Tensor, ...]:
        loss, *outputs = fn(*task)
        grads = torch.autograd.grad(loss, trained, allow_unused=True)
        used = torch.tensor([g is not None for g in grads])
        filled = [torch.zeros_like(p) if g is None else g for p, g in zip(trained, grads)]
        return (loss.detach(), *(o.detach() for o in outputs), used, *filled)

    stacked = map_tasks(one, batch, path, root)
    loss = stacked[0]
    n_outputs = len(stacked) - 2 - len(trained)
    outputs, used, per_task = stacked[1 : 1 + n_outputs], stacked[1 + n_outputs], stacked[2 + n_outputs :]
    means = {id(p): g.mean(0) for p, g, any_used in zip(trained, per_task, used.any(0).tolist()) if any_used}
    return TaskGradients(loss.mean(), tuple(outputs), [means.get(id(p)) for p in params])
