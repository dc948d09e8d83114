"""Which path runs the tasks: `algorithm.batching` = vmap | loop | threads | auto.

`auto` is a fixed rule taken from measurements (docs/performance.md): vmap on CUDA and for networks
without convolutions; for convolutional networks on a CPU, threads when torch has more than one thread,
the loop otherwise. A rule rather than timing at run time, so that runs with the same seed, and resumed
runs, take the same path and compute the same numbers.
"""

from __future__ import annotations

import torch
from torch import nn

from metalearn.config.groups.algorithm import resolve_batching
from metalearn.execution import threads


def auto_path(device: torch.device, network: nn.Module) -> str:
    """The path `batching=auto` takes for `network` on `device`."""
    convolutional = any(isinstance(m, nn.modules.conv._ConvNd) for m in network.modules())
    if device.type == "cuda" or not convolutional:
        return "vmap"
    return "threads" if device.type == "cpu" and threads.workers() > 1 else "loop"


def choose_path(setting: str, batch_norm: str, network: nn.Module, recompute: bool = False) -> str:
    """ "vmap", "loop" or "threads" for `network` under `algorithm.batching=setting`.

    recompute: activation checkpointing is asked for; `auto` then takes the loop, as torch.func does not
    support checkpointing's saved-tensor hooks.
    """
    path = resolve_batching(setting, batch_norm)
    if path != "auto":
        return path
    return "loop" if recompute else auto_path(next(network.parameters()).device, network)
