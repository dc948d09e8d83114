"""How the tasks of a meta-batch are run: one after another, side by side on worker threads, or as one
torch.func.vmap. Learners state their maths as one per-task function; this package maps it.

    map_tasks(fn, batch, path, root)        -> fn's outputs for every task, stacked on dim 0
    map_fields(fn, fields, path, root)      -> the same over any per-task tensors (tasks on dim 0)
    map_task_gradients(fn, batch, path, root) -> the same plus, on `threads`, each task's meta-gradient
    inner_grads(loss_fn, params, second_order) -> an inner-loop gradient that works on every path
    call_module(module, params, x)          -> a functional forward pass that every path can run
    choose_path(setting, batch_norm, network, recompute=False) -> the path `algorithm.batching` names

Beside them: `ranks` splits meta-batches and evaluation episodes over processes (torchrun, srun) and combines
their means; `precision` is device.precision (autocast, fp16 loss scaling); `compiled` is device.compile.
"""

from metalearn.execution.paths import choose_path
from metalearn.execution.tasks import (
    TaskGradients,
    call_module,
    inner_grads,
    map_fields,
    map_task_gradients,
    map_tasks,
)

__all__ = [
    "TaskGradients",
    "call_module",
    "choose_path",
    "inner_grads",
    "map_fields",
    "map_task_gradients",
    "map_tasks",
]
