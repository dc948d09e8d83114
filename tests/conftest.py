"""Shared test fixtures: an isolated data cache, the real Omniglot folder when present, CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OMNIGLOT_DIR = Path(os.environ.get("METALEARN_OMNIGLOT_DIR", ROOT.parent / "shared" / "data" / "omniglot"))

# Small, fast settings used by end-to-end runs: a tiny glyphs set, few episodes, no progress bars.
FAST = [
    "dataset.train_classes=40",
    "dataset.val_classes=10",
    "dataset.test_classes=10",
    "sampler.val_episodes=10",
    "sampler.test_episodes=20",
    "trainer.progress=false",
    "device=cpu",
]


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


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run `python -m metalearn ARGS` in a subprocess and capture its output."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None) if env is None or "HYDRA_FULL_ERROR" not in env else None
    return subprocess.run(
        [sys.executable, "-m", "metalearn", *args],
        cwd=cwd or ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
