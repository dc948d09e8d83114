"""One run directory as the report reads it: its status, its config as dotted keys, its test result and its
validation curve.

A run directory holds `.hydra/config.yaml` and `.hydra/overrides.yaml` (written by Hydra as the run starts),
`metrics.jsonl` (one row per validation), then `results.json` when it finished or `failed.json` when it failed or
was interrupted; with neither it is unfinished, or still running while a live process holds its claim
(metalearn.files.claim).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from metalearn.files import claim_holder
from metalearn.metrics import lower_is_better

MARKERS = ("results.json", "failed.json", ".hydra/config.yaml")


def is_run_dir(folder: Path) -> bool:
    return any((folder / marker).is_file() for marker in MARKERS)


@dataclass
class Run:
    """What the report knows of one run directory (or of a sweep's job that never started: status "missing")."""

    path: Path
    status: str  # finished | failed | interrupted | unfinished | running | missing | unreadable
    config: dict[str, Any] = field(default_factory=dict)  # dotted key -> value; group choices as "algorithm": "maml"
    overrides: list[str] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    message: str = ""  # why the run is not in the table
    _rows: list[dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The rows of metrics.jsonl; lines that do not parse (a torn last line) are left out."""
        if self._rows is None:
            self._rows = read_jsonl(self.path / "metrics.jsonl")
        return self._rows

    @property
    def metric(self) -> str | None:
        """accuracy, mse, ...: from results.json, else from the validation keys of metrics.jsonl."""
        if self.results.get("metric"):
            return str(self.results["metric"])
        for row in self.rows:
            for key in row:
                if key.startswith("val_") and not key.endswith("_ci95"):
                    return key[len("val_") :]
        return None

    def curve(self, metric: str) -> list[tuple[int, float, float | None]]:
        """(iteration, validation value, elapsed seconds or None) of each validation row, in file order."""
        points = []
        for row in self.rows:
            value, iteration = row.get(f"val_{metric}"), row.get("iteration")
            if is_number(value) and is_number(iteration):
                elapsed = row.get("elapsed_s")
                points.append((int(iteration), float(value), float(elapsed) if is_number(elapsed) else None))
        return points

    def best_val(self) -> float | None:
        """The best validation value in metrics.jsonl, in the metric's direction."""
        metric = self.metric
        values = [value for _, value, _ in self.curve(metric)] if metric else []
        if not values:
            return None
        return min(values) if lower_is_better(metric) else max(values)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def read_yaml(path: Path) -> Any:
    """The YAML file's content, or None when it is absent or does not parse."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists and empty dicts are values."""
    if not isinstance(tree, dict) or (not tree and prefix):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _resolved(raw: dict[str, Any]) -> dict[str, Any]:
    """Hydra's saved config with its `${...}` interpolations resolved, each one that cannot be (a resolver only
    metalearn's command registers) kept as its text."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    flat = flatten(raw)
    try:
        cfg = OmegaConf.create(raw)
    except Exception:  # not a config OmegaConf takes: its values as written
        return flat
    try:
        return flatten(OmegaConf.to_container(cfg, resolve=True))
    except Exception:  # one interpolation that fails: resolve the others one by one
        pass
    for key, value in flat.items():
        if isinstance(value, str) and "${" in value:
            try:
                found = OmegaConf.select(cfg, key)
            except Exception:
                continue
            flat[key] = (
                OmegaConf.to_container(found, resolve=True) if isinstance(found, (DictConfig, ListConfig)) else found
            )
    return flat


def _from_overrides(overrides: list[str]) -> dict[str, Any]:
    """A config of last resort: the `key=value` overrides, values read as YAML."""
    config: dict[str, Any] = {}
    for override in overrides:
        key, equals, value = str(override).partition("=")
        if not equals or key.startswith("~"):
            continue
        try:
            config[key.lstrip("+").split("@")[0]] = yaml.safe_load(value)
        except yaml.YAMLError:
            config[key.lstrip("+").split("@")[0]] = value
    return config


def _choices(run_dir: Path, results: dict[str, Any]) -> dict[str, Any]:
    """The group options the run used (algorithm: maml, ...), Hydra's own groups left out."""
    choices = results.get("choices")
    if not isinstance(choices, dict):
        hydra_cfg = read_yaml(run_dir / ".hydra" / "hydra.yaml")
        try:
            choices = dict(hydra_cfg["hydra"]["runtime"]["choices"])
        except (TypeError, KeyError, ValueError):
            choices = {k: results[k] for k in ("algorithm", "dataset", "model") if results.get(k)}
    return {str(k): v for k, v in choices.items() if not str(k).startswith("hydra/") and str(k) != "hydra"}


def _config(run_dir: Path, results: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    saved = results.get("config")
    if isinstance(saved, dict):
        config = flatten(saved)
    else:
        raw = read_yaml(run_dir / ".hydra" / "config.yaml")
        config = _resolved(raw) if isinstance(raw, dict) else _from_overrides(overrides)
    return {**_choices(run_dir, results), **config}


def read_run(run_dir: Path) -> Run:
    """Read one run directory; never raises for what is in it (an unreadable run is listed with the reason)."""
    overrides = read_yaml(run_dir / ".hydra" / "overrides.yaml")
    overrides = [str(o) for o in overrides] if isinstance(overrides, list) else []
    problem = ""
    results: dict[str, Any] = {}
    if (run_dir / "results.json").is_file():
        try:
            loaded = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
            if not isinstance(loaded, dict) or not is_number(loaded.get("mean")):
                raise ValueError("it holds no test mean")
            results = loaded
        except (OSError, ValueError) as exc:
            problem = f"results.json cannot be read: {exc}"
    failed: dict[str, Any] = {}
    if not results and (run_dir / "failed.json").is_file():
        try:
            loaded = json.loads((run_dir / "failed.json").read_text(encoding="utf-8"))
            failed = loaded if isinstance(loaded, dict) else {"error": str(loaded)}
        except (OSError, ValueError) as exc:
            failed = {"error": f"failed.json cannot be read: {exc}"}
        if not overrides and isinstance(failed.get("overrides"), list):
            overrides = [str(o) for o in failed["overrides"]]
    run = Run(run_dir, "finished", _config(run_dir, results, overrides), overrides, results)
    if problem:
        run.status, run.message = "unreadable", problem
    elif results:
        status = results.get("status")
        if status not in (None, "finished"):
            run.status, run.message = str(status), f"results.json says {status}"
    elif failed:
        run.status = str(failed.get("status") or "failed")
        error = str(failed.get("error") or "no error message").splitlines()
        code = failed.get("exit_code")
        run.message = (error[0] if error else "") + (f" (exit code {code})" if code not in (None, "") else "")
    else:
        holder = claim_holder(run_dir)  # the pid of a live run holding it, -1 for one on another machine
        last = run.curve(run.metric)[-1][0] if run.metric and run.curve(run.metric) else None
        progress = f"last validation at iteration {last}" if last is not None else "no validation yet"
        if holder is not None:
            who = f"process {holder}" if holder > 0 else "a process on another machine"
            run.status, run.message = "running", f"held by {who}; {progress}"
        else:
            run.status, run.message = "unfinished", f"no results.json or failed.json (stopped or killed); {progress}"
    return run
