"""Which config keys tell runs apart, the groups of runs they make (one per setting, its seeds together), and
`--filter KEY=VALUE`."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Iterable

import yaml

from metalearn.errors import MetalearnError
from metalearn.report.runs import Run
from metalearn.report.text import display

# keys that never define an experiment: where files are, how a run reports progress, whether it resumed
INCIDENTAL_KEYS = frozenset(
    {"checkpoint", "resume", "trainer.resume", "trainer.progress", "dataset.cache_dir", "dataset.root", "eval.runs_dir"}
)
INCIDENTAL_ROOTS = frozenset({"hydra", "device"})  # Hydra's own settings; the machine a run used


class _Missing:
    """The value of a key a run's config does not have."""

    def __repr__(self) -> str:
        return "–"


MISSING: Any = _Missing()


def incidental(key: str) -> bool:
    """Whether `key` is left out of the automatic grouping: a seed (seed, *.seed, *_seed), a path, Hydra's or the
    device's settings."""
    last = key.rsplit(".", 1)[-1]
    root = re.split(r"[./]", key, maxsplit=1)[0]
    return key in INCIDENTAL_KEYS or root in INCIDENTAL_ROOTS or last == "seed" or last.endswith("_seed")


def hashable(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return ("json", json.dumps(value, sort_keys=True, default=str))
    if isinstance(value, float) and math.isnan(value):
        return ("nan",)
    return value


def value_of(run: Run, key: str) -> Any:
    return run.config.get(key, MISSING)


def _determined(key: str, by: str, runs: list[Run]) -> bool:
    """Whether the value of `key` follows from the value of `by` in every run."""
    seen: dict[Any, Any] = {}
    for run in runs:
        value = hashable(value_of(run, key))
        if seen.setdefault(hashable(value_of(run, by)), value) != value:
            return False
    return True


def varying_keys(runs: list[Run]) -> list[str]:
    """The keys whose values differ between `runs`, seeds and incidental keys left out, in config order.

    A group's keys that only change with its option are left out too: with algorithm=maml,protonet the key
    `algorithm` stays and `algorithm._target_` goes, while `algorithm.inner_lr=0.1,0.01` (varying within maml) stays.
    """
    order: dict[str, None] = {}
    for run in runs:
        order.update(dict.fromkeys(run.config))
    varying = [key for key in order if not incidental(key) and len({hashable(value_of(run, key)) for run in runs}) > 1]
    groups = [key.replace("/", ".") for key in varying]
    kept = []
    for key in varying:
        owners = [v for v, g in zip(varying, groups) if key.startswith(g + ".")]
        if not any(_determined(key, owner, runs) for owner in owners):
            kept.append(key)
    return kept


@dataclass
class Group:
    """The finished runs of one setting: the same values of the grouping keys and the same metric."""

    keys: tuple[str, ...]
    values: tuple[Any, ...]
    metric: str
    runs: list[Run]

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={display(v) if v is not MISSING else '–'}" for k, v in zip(self.keys, self.values))


def sort_key(value: Any) -> tuple[Any, ...]:
    """Missing, null, booleans, numbers (by value), then text (digits compared as numbers)."""
    if value is MISSING:
        return (0,)
    if value is None:
        return (1,)
    if isinstance(value, bool):
        return (2, value)
    if isinstance(value, (int, float)):
        return (3, value if not math.isnan(value) else math.inf)
    text = display(value)
    return (4, [(int(p), "") if p.isdigit() else (-1, p) for p in re.split(r"(\d+)", text)])


def group_runs(runs: list[Run], keys: Iterable[str]) -> list[Group]:
    """Finished runs grouped by their values of `keys` (and their metric), sorted by those values."""
    keys = tuple(keys)
    groups: dict[Any, Group] = {}
    for run in runs:
        values = tuple(value_of(run, key) for key in keys)
        metric = run.metric or "?"
        index = (tuple(hashable(v) for v in values), metric)
        groups.setdefault(index, Group(keys, values, metric, [])).runs.append(run)
    return sorted(groups.values(), key=lambda g: ([sort_key(v) for v in g.values], g.metric))


# --- --filter KEY=VALUE -------------------------------------------------------------------------------------
def parse_filters(texts: Iterable[str]) -> dict[str, list[Any]]:
    """KEY=VALUE texts -> {KEY: [VALUE, ...]}, values read as YAML; a key given twice keeps either value."""
    filters: dict[str, list[Any]] = {}
    for text in texts:
        key, equals, value = text.partition("=")
        if not equals or not key.strip():
            raise MetalearnError(f"--filter {text!r}: give KEY=VALUE, for example --filter algorithm=maml")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        filters.setdefault(key.strip(), []).append(parsed)
    return filters


def same(have: Any, wanted: Any) -> bool:
    """A config value against a --filter value: numbers by value (1e-3 matches 0.001), the rest as text."""
    if have is MISSING:
        return False
    numbers = []
    for value in (have, wanted):
        if isinstance(value, bool):
            break
        try:
            numbers.append(float(value))
        except (TypeError, ValueError):
            break
    if len(numbers) == 2:
        return numbers[0] == numbers[1]
    return display(have) == display(wanted)


def matches(run: Run, filters: dict[str, list[Any]]) -> bool:
    return all(any(same(value_of(run, key), wanted) for wanted in values) for key, values in filters.items())
