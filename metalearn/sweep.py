"""The end of a sweep (`metalearn -m ...`): which jobs finished and which failed, said once for the whole sweep.

Each job records how it ended in its own directory (results.json, or failed.json with its error line), so this
works for every launcher, including those that run jobs in other processes or on other machines. Hydra calls
`SweepSummary.on_multirun_end` in the process that launched the sweep (conf/app.yaml lists the callback);
`metalearn.cli.main` then exits non-zero if any job failed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from metalearn.files import FAILED_FILE, RESULTS_FILE

_FAILED: list[Path] = []


def sweep_failures() -> list[Path]:
    """The directories of the failed jobs of the sweep(s) this process ran."""
    return list(_FAILED)


def _job_dirs(sweep_dir: Path) -> list[Path]:
    """The job directories of a sweep (hydra.sweep.subdir is the job number by default), in job order."""
    jobs = [p for p in sweep_dir.iterdir() if p.is_dir() and (p / ".hydra").is_dir()] if sweep_dir.is_dir() else []
    return sorted(jobs, key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def summarize(sweep_dir: Path) -> tuple[list[str], list[Path]]:
    """The lines that sum up the sweep in `sweep_dir`, and its failed job directories."""
    jobs = _job_dirs(sweep_dir)
    finished = [job for job in jobs if (job / RESULTS_FILE).is_file()]
    failed = [job for job in jobs if (job / FAILED_FILE).is_file() and job not in finished]
    unfinished = len(jobs) - len(finished) - len(failed)
    counts = f"{len(finished)} finished, {len(failed)} failed" + (f", {unfinished} unfinished" if unfinished else "")
    lines = [f"sweep of {len(jobs)} jobs in {sweep_dir}: {counts}"]
    for job in failed:
        record = _read(job / FAILED_FILE)
        overrides = " ".join(record.get("overrides") or [])
        lines.append(f"  failed: {job} ({overrides}): {record.get('error', 'no message')}")
    lines.append(f"table and plots: metalearn report {sweep_dir}")
    return lines, failed


class SweepSummary(Callback):
    """Hydra callback: after the last job, print the sweep's summary to stderr and remember its failures."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        lines, failed = summarize(Path(str(config.hydra.sweep.dir)))
        _FAILED.extend(failed)
        print("\n".join(lines), file=sys.stderr, flush=True)
