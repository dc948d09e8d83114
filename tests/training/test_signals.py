"""SIGTERM / SIGINT from outside: stop at a safe point with a checkpoint and the resume command; exit 143 / 130.

(SIGTERM during validation, then an exact resume, is in test_resume.py beside its reference run.)
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.support import ROOT, TINY
from tests.training.test_resume import ENV

pytestmark = pytest.mark.slow


def _read_until(proc: subprocess.Popen, needle: bytes, limit_s: float = 240) -> bytes:
    """Read the child's stderr until `needle` shows up (an event, not a sleep); the limit only guards a hang."""
    seen, end = b"", time.monotonic() + limit_s
    while needle not in seen:
        assert time.monotonic() < end and proc.poll() is None, seen.decode(errors="replace")[-2000:]
        ready, _, _ = select.select([proc.stderr], [], [], 1.0)
        if ready:
            seen += os.read(proc.stderr.fileno(), 65536)
    return seen


def _start(*args: str) -> subprocess.Popen:
    env = {**os.environ, **ENV}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.Popen(
        [sys.executable, "-m", "metalearn", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def test_external_sigterm_in_training_then_sigint_in_evaluation(tmp_path: Path) -> None:
    train_dir, eval_dir = tmp_path / "train", tmp_path / "eval"
    # A long run, signalled from outside once its first validation has produced best.pt.
    proc = _start(
        *TINY,
        "trainer.iterations=100000",
        "trainer.val_interval=2",
        "trainer.progress=true",
        f"hydra.run.dir={train_dir}",
    )
    _read_until(proc, b"meta-train")
    while not (train_dir / "checkpoints" / "best.pt").exists():
        _read_until(proc, b"it")  # keep the pipe drained while training runs
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err.decode()[-2000:]
    err_text = err.decode()
    assert "Traceback" not in err_text and f"resume with: metalearn resume={train_dir}" in err_text
    last = torch.load(train_dir / "checkpoints" / "last.pt", weights_only=True)
    assert 2 <= last["iteration"] < 100000
    before = {p: p.read_bytes() for p in train_dir.rglob("*") if p.is_file()}

    # Ctrl-C while mode=eval scores many test episodes: one line, exit 130, no results, the run untouched.
    proc = _start(
        "mode=eval",
        f"checkpoint={train_dir}/checkpoints/best.pt",
        "sampler.test_episodes=20000",
        "sampler.eval_batch_size=4",
        "trainer.progress=true",
        f"hydra.run.dir={eval_dir}",
    )
    _read_until(proc, b"eval test")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()[-2000:]
    lines = [
        line
        for line in err.decode().replace("\r", "\n").splitlines()
        if line.startswith(("Interrupted", "Error", "Trace"))
    ]
    assert lines == ["Interrupted by SIGINT: evaluation stopped; no results were written"]
    assert not (eval_dir / "results.json").exists()
    assert {p: p.read_bytes() for p in train_dir.rglob("*") if p.is_file()} == before
