"""`device.precision`: the dtype of the forward passes (torch.autocast) and, for fp16, dynamic loss scaling.

fp32: everything in float32. bf16: matrix products and convolutions in bfloat16 (8 bits of mantissa, float32's
range: no scaling needed), on the CPU and on GPUs that have it. fp16: in float16 (10 bits of mantissa, a narrow
range), with the outer loss scaled so that small gradients do not underflow; a step whose scaled gradient overflows
is skipped and the scale lowered (torch.amp.GradScaler). Parameters, optimiser states and the outer update stay in
float32 throughout; the inner loop of MAML runs inside the autocast region, so its adapted weights are float32 too,
but its gradients pass through the low-precision products (docs/performance.md measures what that costs the
second-order meta-gradient).
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from typing import ContextManager, Iterator

import torch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

_SCALER: ContextVar[torch.amp.GradScaler | None] = ContextVar("metalearn_scaler", default=None)


def autocast(device: torch.device, precision: str) -> ContextManager[None]:
    """The region in which forward passes run in `precision` ("fp32": an empty region)."""
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])


def make_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """A loss scaler for fp16 (its state is checkpointed with the optimiser's); None otherwise."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None


@contextmanager
def loss_scaling(scaler: torch.amp.GradScaler | None) -> Iterator[None]:
    """Within this block an outer update scales its loss with `scaler` (see `scaler()`)."""
    token = _SCALER.set(scaler)
    try:
        yield
    finally:
        _SCALER.reset(token)


def scaler() -> torch.amp.GradScaler | None:
    """The loss scaler of the outer update running now (fp16), or None."""
    return _SCALER.get()
