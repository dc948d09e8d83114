"""`batching=threads`: the tasks of a meta-batch run concurrently on worker threads, one intra-op thread each.

Why: on a few CPU cores torch's intra-op parallelism splits every operation across the cores, and the
many small, memory-bound operations of a Conv4 meta-iteration gain little from it; running whole tasks
side by side, each single-threaded, keeps the cores busy with independent work (docs/performance.md).

Results do not depend on the thread schedule: each task runs alone on one thread, and the per-task
results are returned in task order, so a run repeats bit for bit. functional_call swaps a module's
tensors while it runs, so each worker calls its own copy of the module (`call_module`), fed with the
original's tensors: gradients reach the original parameters.
"""

from __future__ import annotations

import copy
import queue
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call

# this worker's copies of the modules of the learner being mapped: id(original submodule) -> copy
_TWINS: ContextVar[dict[int, nn.Module] | None] = ContextVar("metalearn_twins", default=None)
_EXECUTOR: tuple[int, ThreadPoolExecutor] | None = None


def workers() -> int:
    """How many tasks run at once: torch's intra-op thread count (torch.set_num_threads / OMP_NUM_THREADS)."""
    return torch.get_num_threads()


def _executor() -> ThreadPoolExecutor:
    global _EXECUTOR
    count = workers()
    if _EXECUTOR is None or _EXECUTOR[0] != count:
        if _EXECUTOR is not None:
            _EXECUTOR[1].shutdown(wait=False)
        _EXECUTOR = (count, ThreadPoolExecutor(count, thread_name_prefix="metalearn-task"))
    return _EXECUTOR[1]


def call_module(module: nn.Module, params: dict[str, Tensor], x: Tensor) -> Tensor:
    """functional_call(module, params, (x,)); on a worker, on the worker's own copy of `module`."""
    twins = _TWINS.get()
    if twins is None:
        return functional_call(module, params, (x,))
    full = {**dict(module.named_parameters()), **dict(module.named_buffers()), **params}
    return functional_call(twins[id(module)], full, (x,))


def _twins(root: nn.Module) -> dict[int, nn.Module]:
    twin = copy.deepcopy(root)
    return {id(original): copied for original, copied in zip(root.modules(), twin.modules())}


def map_threads(
    fn: Callable[..., Sequence[Tensor]], fields: Sequence[Tensor], root: nn.Module
) -> list[Sequence[Tensor]]:
    """[fn(*(f[i] for f in fields)) for every task i], the tasks spread over the workers, results in task order.

    `root` is the module whose functional calls (through call_module) must stay private to a worker.
    The caller's grad mode and autocast region hold on the workers too.
    """
    count = workers()
    pool = _executor()
    spare: queue.SimpleQueue[dict[int, nn.Module]] = queue.SimpleQueue()
    for _ in range(min(count, len(fields[0]))):
        spare.put(_twins(root))
    grad_enabled = torch.is_grad_enabled()
    # autocast (device.precision) is a thread's own state: the workers enter the caller's
    kind = fields[0].device.type
    cast = torch.autocast(kind, dtype=torch.get_autocast_dtype(kind), enabled=torch.is_autocast_enabled(kind))

    def task(i: int) -> Sequence[Tensor]:
        # every task, not once per worker: a thread takes its count from a process-wide value at its first
        # parallel operation, and the main thread restores that value after each map
        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)
        twins = spare.get()
        token = _TWINS.set(twins)
        try:
            with torch.set_grad_enabled(grad_enabled), cast:
                return fn(*(f[i] for f in fields))
        finally:
            _TWINS.reset(token)
            spare.put(twins)

    try:
        return list(pool.map(task, range(len(fields[0]))))
    finally:
        torch.set_num_threads(count)  # the workers' setting of 1 must not leak to threads made later
