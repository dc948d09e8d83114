"""SIGINT / SIGTERM (Ctrl-C, preemption): stop at a safe point instead of dying mid-write.

While the trainer runs inside `deferred()`, the first signal only sets a flag; the trainer finishes the
current iteration, writes checkpoints/last.pt and raises `Interrupted`. Outside it (building data, the
final test) a signal raises `Interrupted` at once: nothing is being written there. A second signal
always raises at once; atomic writes leave the previous checkpoint intact.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Any, Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A stop requested by a signal. A BaseException, so `except Exception` blocks cannot swallow it."""

    def __init__(self, signum: int, message: str = "") -> None:
        super().__init__(message)
        self.signum = signum
        self.message = message

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


class _State:
    pending: int | None = None  # the first signal received while deferring
    deferring: int = 0


_state = _State()


def _handler(signum: int, frame: Any) -> None:
    if _state.deferring and _state.pending is None:
        _state.pending = signum
        return
    raise Interrupted(signum)


@contextmanager
def handle_signals() -> Iterator[None]:
    """Install the handlers for the duration of a command (the CLI does; in-process callers need not)."""
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    _state.pending = None
    for s in SIGNALS:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def deferred() -> Iterator[None]:
    """Within this block a first signal is recorded, not raised; poll `pending()` at safe points."""
    _state.deferring += 1
    try:
        yield
    finally:
        _state.deferring -= 1


def pending() -> int | None:
    """The signal number received while deferring, if any."""
    return _state.pending
