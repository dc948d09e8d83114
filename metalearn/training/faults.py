"""Deterministic fault injection for the reliability tests: one object, inert unless the variables are set.

Each variable names a point of the training loop and the iteration at which the fault fires:

- ``METALEARN_TEST_KILL_AT=POINT:N`` — the process SIGKILLs itself (a power cut, an OOM kill).
- ``METALEARN_TEST_SIGTERM_AT=POINT:N`` — the process sends itself SIGTERM (a preemption).
- ``METALEARN_TEST_FAIL_AT=POINT:N`` — the write at that point raises OSError(ENOSPC) (a full disk).
- ``METALEARN_TEST_NAN_AT=loss:N`` or ``grad:N`` — iteration N's loss, or only its gradient, becomes NaN.
- ``METALEARN_TEST_STALL_AT=POINT:N`` — the process stops responding (a hung process) until a signal arrives.
- ``METALEARN_TEST_RANK=R`` — of several processes, only rank R has the faults above.

Points: ``iteration`` (after the update, before logging), ``validation`` (after validating, before
anything is recorded), ``metrics`` (halfway through writing the metrics.jsonl row), ``best`` and
``checkpoint`` (halfway through writing best.pt / last.pt, before the atomic rename).
"""

from __future__ import annotations

import errno
import os
import signal
import time
from dataclasses import dataclass
from typing import Mapping

import torch
from torch import Tensor

from metalearn.algorithms.base import StepOutput
from metalearn.launch import launch_from_env
from metalearn.training import interrupt

KILL_VAR, FAIL_VAR, NAN_VAR = "METALEARN_TEST_KILL_AT", "METALEARN_TEST_FAIL_AT", "METALEARN_TEST_NAN_AT"
TERM_VAR, STALL_VAR, RANK_VAR = "METALEARN_TEST_SIGTERM_AT", "METALEARN_TEST_STALL_AT", "METALEARN_TEST_RANK"


class _NaNGradient(torch.autograd.Function):
    """Identity forward; the backward pass returns NaN, so only the gradient is poisoned."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        return torch.full_like(grad, float("nan"))


@dataclass(frozen=True)
class Faults:
    """The faults asked for, each as "POINT:N" (or None); the trainer calls these hooks at each point."""

    kill: str | None = None
    term: str | None = None
    fail: str | None = None
    nan: str | None = None
    stall: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "Faults":
        only = environ.get(RANK_VAR)
        if only is not None and int(only) != launch_from_env(environ).rank:
            return cls()
        return cls(*(environ.get(v) or None for v in (KILL_VAR, TERM_VAR, FAIL_VAR, NAN_VAR, STALL_VAR)))

    def point(self, point: str, iteration: int) -> None:
        """SIGKILL (or SIGTERM, or stall) this process if that is asked for at this point and iteration."""
        here = f"{point}:{iteration}"
        if self.kill == here:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.term == here:
            os.kill(os.getpid(), signal.SIGTERM)
        if self.stall == here:  # hung, until a signal (the launcher ending the run) arrives
            while interrupt.pending() is None:
                time.sleep(0.05)

    def write_due(self, point: str, iteration: int) -> bool:
        """Whether a kill or a failed write is asked for at this point (writers then write partial data first)."""
        return f"{point}:{iteration}" in (self.kill, self.fail)

    def mid_write(self, point: str, iteration: int, path: object) -> None:
        """Called halfway through a write: kill the process or fail the write as asked."""
        self.point(point, iteration)
        if self.fail == f"{point}:{iteration}":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    def step(self, out: StepOutput, iteration: int) -> StepOutput:
        """Poison this iteration's step if asked: its loss, or the gradient it leads to (through the loss, or
        in the gradients already computed, as batching=threads hands them over)."""
        if self.nan == f"loss:{iteration}":
            out.loss = out.loss * float("nan")
        elif self.nan == f"grad:{iteration}":
            if out.grads is None:
                out.loss = _NaNGradient.apply(out.loss)
            else:
                out.grads = [None if g is None else torch.full_like(g, float("nan")) for g in out.grads]
        return out
