"""A workaround that batch-statistics BatchNorm needs under torch.func.vmap (torch's "Patching Batch Norm")."""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode


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
