"""Hydra's sweep directories (outputs/multirun/DATE/TIME/): the jobs a sweep planned and never started, and the
best trial of an Optuna sweep.

A sweep directory holds `multirun.yaml` (the sweep's config: its sweeper and overrides) and one numbered folder per
job, 0/, 1/, ...; the Optuna sweeper adds `optimization_results.yaml` (`best_params`, `best_value`) as it ends.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from metalearn.metrics import lower_is_better
from metalearn.report.runs import Run, read_yaml
from metalearn.report.text import markdown_table


@dataclass
class Sweep:
    path: Path
    sweeper: str  # the sweeper's _target_ (e.g. hydra._internal.core_plugins.basic_sweeper.BasicSweeper)
    jobs: list[Run] = field(default_factory=list)  # by job number, the ones that never started included
    optuna: dict[str, Any] | None = None  # optimization_results.yaml

    @property
    def is_optuna(self) -> bool:
        return self.optuna is not None or "optuna" in self.sweeper.lower()


def _planned(multirun: dict[str, Any]) -> list[list[str]] | int | None:
    """The overrides of each job the basic sweeper launches (as its split_arguments builds them), the number of
    trials of an Optuna sweep, or None where that cannot be told."""
    sweeper = (multirun.get("hydra") or {}).get("sweeper") or {}
    target = str(sweeper.get("_target_", ""))
    if "optuna" in target.lower():
        trials = sweeper.get("n_trials")
        return int(trials) if isinstance(trials, int) else None
    if not target.endswith("BasicSweeper"):
        return None
    params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    task = ((multirun.get("hydra") or {}).get("overrides") or {}).get("task") or []
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        lists: dict[str, list[str]] = {}
        for override in OverridesParser.create().parse_overrides([*params, *map(str, task)]):
            key = override.get_key_element()
            if not override.is_sweep_override():
                lists[key] = [f"{key}={override.get_value_element_as_str()}"]
            elif override.is_discrete_sweep():
                lists[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
            else:
                return None
    except Exception:  # overrides this hydra cannot parse: the jobs on disk are all we know
        return None
    return [list(job) for job in itertools.product(*lists.values())]


def read_sweep(path: Path, runs: list[Run]) -> Sweep:
    """The sweep in `path`, with its job runs among `runs` and a "missing" Run for each job it planned (or skipped
    in its numbering) that has no run directory."""
    multirun = read_yaml(path / "multirun.yaml")
    multirun = multirun if isinstance(multirun, dict) else {}
    hydra = multirun.get("hydra") or {}
    optuna = read_yaml(path / "optimization_results.yaml")
    sweep = Sweep(path, str((hydra.get("sweeper") or {}).get("_target_", "")), optuna=optuna if optuna else None)
    sweep.jobs = [run for run in runs if run.path.parent == path]
    numbered = (hydra.get("sweep") or {}).get("subdir", "${hydra.job.num}") == "${hydra.job.num}"
    if not numbered:
        return sweep
    present = {int(run.path.name) for run in sweep.jobs if run.path.name.isdigit()}
    planned = _planned(multirun)
    count = len(planned) if isinstance(planned, list) else planned or 0
    count = max(count, max(present, default=-1) + 1)
    for num in range(count):
        if num not in present:
            overrides = planned[num] if isinstance(planned, list) else []
            message = "never started (the sweep stopped before it, or is still running)"
            sweep.jobs.append(Run(path / str(num), "missing", overrides=overrides, message=message))
    sweep.jobs.sort(key=lambda run: (0, int(run.path.name)) if run.path.name.isdigit() else (1, run.path.name))
    return sweep


def _varying_overrides(jobs: list[Run]) -> list[list[str]]:
    """Each job's overrides without those every job shares."""
    known = [set(job.overrides) for job in jobs if job.overrides]
    shared = set.intersection(*known) if known else set()
    return [[o for o in job.overrides if o not in shared] for job in jobs]


def _value(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def optuna_section(sweep: Sweep) -> str:
    """The best parameters and value of an Optuna sweep, then its trials, best validation value first."""
    lines = [f"### Optuna sweep {sweep.path}", ""]
    optuna = sweep.optuna or {}
    if "best_params" in optuna:
        params = " ".join(f"{k}={_value(v)}" for k, v in (optuna.get("best_params") or {}).items())
        lines.append(f"Best value {_value(optuna.get('best_value'))} with: {params or '(no parameters)'}")
    elif "solutions" in optuna:
        lines.append(f"Pareto front ({len(optuna['solutions'] or [])} solutions):")
        for solution in optuna["solutions"] or []:
            params = " ".join(f"{k}={_value(v)}" for k, v in (solution.get("params") or {}).items())
            values = ", ".join(_value(v) for v in solution.get("values") or [])
            lines.append(f"- values {values} with: {params}")
    else:
        lines.append("No optimization_results.yaml yet: the sweep has not finished.")
    trials = sweep.jobs
    metrics = {job.metric for job in trials if job.metric}
    metric = metrics.pop() if len(metrics) == 1 else None
    lower = lower_is_better(metric)
    rows = []
    for job, overrides in zip(trials, _varying_overrides(trials)):
        best = job.best_val()
        rows.append((job, overrides, best))
    rows.sort(key=lambda r: (r[2] is None, (r[2] if lower else -r[2]) if r[2] is not None else 0))
    direction = "lower" if lower else "higher"
    header = ["trial", f"best val {metric or 'metric'} ({direction} is better)", "status", "overrides"]
    table = [
        [job.path.name, _value(best) if best is not None else "–", job.status, " ".join(overrides) or "–"]
        for job, overrides, best in rows
    ]
    lines += ["", markdown_table(header, table, right={1})]
    return "\n".join(lines)
