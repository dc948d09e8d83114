"""Shared fixtures: an isolated data cache, the real Omniglot folder when present, the tiny preset and
ways to run metalearn (the helpers behind them are in tests/support.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.support import OMNIGLOT_DIR, TINY, run_cli, run_inprocess


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (pyproject's addopts): a worker per core, at most four: each worker holds torch and starts CLI runs
    of its own, so on a many-core machine more would cost memory before they saved time."""
    chosen = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS")
    return int(chosen) if chosen else max(1, min(4, os.cpu_count() or 1))


@pytest.fixture(scope="session", autouse=True)
def _data_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test (and every CLI subprocess) caches built data in one temporary folder."""
    cache = tmp_path_factory.mktemp("metalearn-cache")
    os.environ["METALEARN_CACHE"] = str(cache)
    return cache


@pytest.fixture
def omniglot_dir() -> Path:
    if not (OMNIGLOT_DIR / "images_background.zip").is_file():
        pytest.skip(f"real Omniglot not found at {OMNIGLOT_DIR}")
    return OMNIGLOT_DIR


@pytest.fixture
def tiny() -> list[str]:
    """The tiny preset's overrides (a fresh list: a test may extend it)."""
    return list(TINY)


@pytest.fixture
def cli() -> Callable[..., Any]:
    """`cli(*ARGS, env=..., cwd=...)` runs `python -m metalearn ARGS` in a subprocess."""
    return run_cli


@pytest.fixture
def inprocess() -> Callable[..., dict[str, Any]]:
    """`inprocess(run_dir, *OVERRIDES)` runs metalearn in this process and returns its results."""
    return run_inprocess
