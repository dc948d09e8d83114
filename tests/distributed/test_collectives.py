"""The collectives of metalearn.execution.ranks on two real processes (torchrun, gloo): BatchNorm statistics,
gradients, evaluation scores and failures assembled across ranks equal one process's (collectives_worker.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

WORKER = Path(__file__).with_name("collectives_worker.py")


@pytest.mark.slow
def test_two_ranks_assemble_what_one_process_computes() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 0: all checks passed" in done.stdout and "rank 1: all checks passed" in done.stdout
