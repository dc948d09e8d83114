"""Deterministic fault injection for the reliability tests (test hooks; inert unless the variables are set).

Each variable names a point of the training loop and the iteration at which the fault fires:

- ``METALEARN_TEST_KILL_AT=POINT:N`` — the process SIGKILLs itself (a power cut, an OOM kill).
- ``METALEARN_TEST_SIGTERM_AT=POINT:N`` — the process sends itself SIGTERM (a preemption).
- ``METALEARN_TEST_FAIL_AT=POINT:N`` — the write at that point raises OSError(ENOSPC) (a full disk).
- ``METALEARN_TEST_NAN_AT=loss:N`` or ``grad:N`` — iteration N's loss, or only its gradient, becomes NaN.

Points: ``iteration`` (after the update, before logging), ``validation`` (after validating, before
anything is recorded), ``metrics`` (halfway through writing the metrics.jsonl row), ``best`` and
``checkpoint`` (halfway through writing best.pt / last.pt, before the atomic rename).
"""

from __future__ import annotations

import errno
import os
import signal

import torch
from torch import Tensor

from metalearn.algorithms.base import StepOutput

KILL_VAR, FAIL_VAR, NAN_VAR = "METALEARN_TEST_KILL_AT", "METALEARN_TEST_FAIL_AT", "METALEARN_TEST_NAN_AT"
TERM_VAR = "METALEARN_TEST_SIGTERM_AT"


def _due(variable: str, point: str, iteration: int) -> bool:
    return os.environ.get(variable, "") == f"{point}:{iteration}"


def kill_point(point: str, iteration: int) -> None:
    """SIGKILL (or SIGTERM) this process if METALEARN_TEST_KILL_AT (or _SIGTERM_AT) names this point and iteration."""
    if _due(KILL_VAR, point, iteration):
        os.kill(os.getpid(), signal.SIGKILL)
    if _due(TERM_VAR, point, iteration):
        os.kill(os.getpid(), signal.SIGTERM)


def write_fault_due(point: str, iteration: int) -> bool:
    """Whether a kill or a failed write is asked for at this point (callers then write partial data first)."""
    return _due(KILL_VAR, point, iteration) or _due(FAIL_VAR, point, iteration)


def write_fault(point: str, iteration: int, path: object) -> None:
    """Called halfway through a write: kill the process or fail the write as the variables ask."""
    kill_point(point, iteration)
    if _due(FAIL_VAR, point, iteration):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


class _NaNGradient(torch.autograd.Function):
    """Identity forward; the backward pass returns NaN, so only the gradient is poisoned."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        return torch.full_like(grad, float("nan"))


def poison_step(out: StepOutput, iteration: int) -> StepOutput:
    """Apply METALEARN_TEST_NAN_AT to this iteration's step: its loss, or the gradient it leads to
    (through the loss, or in the gradients already computed, as batching=threads hands them over)."""
    if _due(NAN_VAR, "loss", iteration):
        out.loss = out.loss * float("nan")
    elif _due(NAN_VAR, "grad", iteration):
        if out.grads is None:
            out.loss = _NaNGradient.apply(out.loss)
        else:
            out.grads = [None if g is None else torch.full_like(g, float("nan")) for g in out.grads]
    return out
