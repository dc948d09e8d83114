"""`device.compile`: torch.compile where it holds with torch.func, and a clear refusal where it does not.

What is compiled: on the vmap path, the whole vmapped per-task function (`vmap`), so that torch.func's inner-loop
gradients are traced into one graph, whose backward pass is then an ordinary first-order one; elsewhere the backbone
(metric learners and closed-form heads, which run one batched pass per episode, and first-order learners on the loop
or worker threads).

Refused: the loop and worker-thread paths of second-order learners, whose meta-gradient is a double backward
through torch.autograd (create_graph=True) that compiled graphs cannot take (AOTAutograd does not support double
backward), and the meta-RL learners, whose rollouts step an environment between forward passes. A compiled module
inside torch.func transforms runs uncompiled, which is why the vmap path compiles the transform itself.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from metalearn.errors import ConfigError


def check_backend(backend: str) -> None:
    """ConfigError for a name torch.compile does not know."""
    if backend not in torch.compiler.list_backends(exclude_tags=()):
        usual = ", ".join(torch.compiler.list_backends())
        raise ConfigError(f"device.compile_backend={backend} is not a torch.compile backend; usual ones: {usual}")


def vmap(fn: Callable[..., Any], backend: str | None = None) -> Callable[..., Any]:
    """torch.func.vmap of a per-task function over its tasks (dim 0), compiled with `backend` (None: not compiled).
    The same function code compiles once: later calls reuse the graph while the shapes stay the same."""
    mapped = torch.func.vmap(fn, randomness="different")
    return mapped if backend is None else torch.compile(mapped, backend=backend)


def prepare(learner: nn.Module, path: str | None, second_order: bool, backend: str) -> None:
    """Compile `learner` (whose tasks run on `path`; None: no per-task function) with `backend`: its vmapped
    per-task function from now on (`learner.compile_backend`, which the vmap path reads), or its backbone.
    ConfigError where that cannot work."""
    check_backend(backend)
    if getattr(learner, "task", None) == "reinforcement":
        raise ConfigError(
            "device.compile=true is for the supervised learners; the meta-RL learners step environments between "
            "forward passes: remove device.compile"
        )
    if path in ("loop", "threads") and second_order:
        raise ConfigError(
            f"device.compile=true cannot compile {type(learner).__name__}'s second-order meta-gradient on "
            f"batching={path}: it differentiates twice through torch.autograd, which compiled graphs do not support; "
            "use algorithm.batching=vmap (auto's choice on CUDA), a first-order learner, or remove device.compile"
        )
    if path == "vmap":
        learner.compile_backend = backend
    else:  # no per-task function, or first-order on the loop or threads: the backbone
        learner.backbone.compile(backend=backend)
