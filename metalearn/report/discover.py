"""Finding the run directories and sweep directories under the folders a report is asked for."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from metalearn.report.runs import Run, is_run_dir, read_run
from metalearn.report.sweeps import Sweep, read_sweep

SKIP = frozenset({"checkpoints", "__pycache__", "node_modules"})  # and hidden folders (.hydra, .git, ...)


def natural_key(name: str) -> list[Any]:
    """Sort "2" before "10": digits compare as numbers."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name) if part]


def find(dirs: list[Path]) -> tuple[list[Run], list[Sweep]]:
    """Every run directory under `dirs` (each once, in path order; a run's own folders are not searched), then the
    jobs that sweeps among them planned and never started (status "missing"); and the sweeps."""
    runs: list[Run] = []
    sweep_dirs: list[Path] = []
    seen: set[Path] = set()
    for root in dirs:
        for folder, subdirs, files in os.walk(root):
            here = Path(folder)
            if here.resolve() in seen:
                subdirs.clear()
                continue
            seen.add(here.resolve())
            if is_run_dir(here):
                runs.append(read_run(here))
                subdirs.clear()
                continue
            if "multirun.yaml" in files:
                sweep_dirs.append(here)
            subdirs[:] = sorted((d for d in subdirs if d not in SKIP and not d.startswith(".")), key=natural_key)
    sweeps = [read_sweep(path, runs) for path in sweep_dirs]
    return runs + [job for sweep in sweeps for job in sweep.jobs if job.status == "missing"], sweeps
