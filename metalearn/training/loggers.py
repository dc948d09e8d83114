"""Where metrics rows go besides metrics.jsonl: the backends of the `logger` group.

metrics.jsonl, written by the trainer, is the source of truth: it is always written, whatever the logger, and
a resume cuts it back to the checkpoint. Each backend receives the very rows written to it (same keys, same
values; `iteration` is the step) and is kept consistent with it: metrics.csv is derived from metrics.jsonl,
and a resumed TensorBoard log hides the points logged after the checkpoint (`purge_step`).

A run's logger, as the trainer and metalearn.run use it (`RunLogger`):

    logger = build_logger(cfg.logger, run_dir, cfg)  # a missing optional package: ConfigError, before training
    logger.start(first_iteration)                    # the trainer, once metrics.jsonl is cut back to the checkpoint
    logger.log(row)                                  # the trainer, after each metrics.jsonl row
    logger.finish(results)                           # metalearn.run, with results.json's values; then closed
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import os
import time
import uuid
import weakref
from pathlib import Path
from typing import Any, Mapping, Protocol

import yaml
from omegaconf import DictConfig, OmegaConf

from metalearn.build import build
from metalearn.errors import ConfigError
from metalearn.files import atomic_write

METRICS_FILE = "metrics.jsonl"
CSV_FILE = "metrics.csv"
TENSORBOARD_DIR = "tensorboard"


class MetricsLogger(Protocol):
    """A backend of the `logger` group. Its constructor takes `run_dir` and its schema's keys, and imports what it
    needs (ConfigError naming the extra to install); it writes nothing before `start`."""

    def start(self, first_iteration: int) -> None:
        """Open for writing; `first_iteration` is the next iteration trained (greater than 1 on a resume)."""

    def log_config(self, config: dict[str, Any]) -> None:
        """The run's resolved config, once per session, right after `start`."""

    def log(self, row: dict[str, Any]) -> None:
        """One metrics.jsonl row, once it is written there: `iteration`, then scalars."""

    def finish(self, final: dict[str, float]) -> None:
        """The run ended: its final test metrics (`test_accuracy`, `test_accuracy_ci95`)."""

    def close(self) -> None:
        """Release files and background threads (also after an error); safe to call twice."""


def _require(module: str, option: str, extra: str) -> Any:
    """Import an optional package's module, or say in one line which extra of metalearn installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f'logger={option} needs the {extra} package: pip install "metalearn[{extra}]"') from None


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a metrics.jsonl file (none if it does not exist; a half-written last line is left out)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # the row a killed process was writing; a resume cuts it off
    return rows


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config keys as dotted names: {"trainer": {"lr": 0.001}} -> {"trainer.lr": 0.001}."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def final_metrics(results: Mapping[str, Any]) -> dict[str, float]:
    """A run's final metrics from its results.json values: {"test_accuracy": mean, "test_accuracy_ci95": ci95}."""
    metric = results.get("metric")
    if metric is None or results.get("mean") is None:
        return {}
    final = {f"test_{metric}": float(results["mean"])}
    if results.get("ci95") is not None:
        final[f"test_{metric}_ci95"] = float(results["ci95"])
    return final


class _Backend:
    """Does nothing: the base of the backends below, each overriding what it writes."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)

    def start(self, first_iteration: int) -> None:
        pass

    def log_config(self, config: dict[str, Any]) -> None:
        pass

    def log(self, row: dict[str, Any]) -> None:
        pass

    def finish(self, final: dict[str, float]) -> None:
        pass

    def close(self) -> None:
        pass


class JsonlLogger(_Backend):
    """metrics.jsonl only, which the trainer writes: nothing more to do."""


class CsvLogger(_Backend):
    """metrics.csv: a header of every key seen (in order of first appearance), one line per metrics.jsonl row,
    empty cells for keys a row lacks. It is rebuilt from metrics.jsonl when a session starts (after a resume cut
    the rows back), when a row brings a new key and at the end, and appended to otherwise."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir)
        self.path = self.run_dir / CSV_FILE
        self.columns: list[str] = []

    def start(self, first_iteration: int) -> None:
        self._rewrite()

    def log(self, row: dict[str, Any]) -> None:
        if not set(row) <= set(self.columns):
            self._rewrite()  # metrics.jsonl already holds this row
            return
        with open(self.path, "a", encoding="utf-8", newline="") as handle:
            self._writer(handle).writerow(row)

    def finish(self, final: dict[str, float]) -> None:
        self._rewrite()

    def _writer(self, handle: Any) -> csv.DictWriter:
        return csv.DictWriter(handle, self.columns, lineterminator="\n")

    def _rewrite(self) -> None:
        rows = read_rows(self.run_dir / METRICS_FILE)
        self.columns = list(dict.fromkeys(key for row in rows for key in row))
        text = io.StringIO()
        if self.columns:
            writer = self._writer(text)
            writer.writeheader()
            writer.writerows(rows)
        atomic_write(self.path, lambda handle: handle.write(text.getvalue().encode("utf-8")))


class TensorBoardLogger(_Backend):
    """TensorBoard event files in RUN/tensorboard/: each row's scalars at step `iteration` (flushed at once, so a
    killed run keeps them), the config as text, and at the end hparams (the config's scalar values) with the
    final test metrics. A later session (a resume) starts with `purge_step` at its first iteration, which hides
    the points an earlier session logged after its checkpoint."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir)
        self._summary_writer = _require("torch.utils.tensorboard", "tensorboard", "tensorboard").SummaryWriter
        self.log_dir = self.run_dir / TENSORBOARD_DIR
        self.writer: Any = None
        self.continued = False  # an earlier session of this run wrote here
        self.config: dict[str, Any] = {}
        self.step = 0

    def start(self, first_iteration: int) -> None:
        self.continued = any(self.log_dir.glob("events.out.tfevents.*"))
        self.step = first_iteration - 1
        purge = first_iteration if self.continued else None
        self.writer = self._summary_writer(log_dir=str(self.log_dir), purge_step=purge)

    def log_config(self, config: dict[str, Any]) -> None:
        self.config = config
        if not self.continued:  # else the first session wrote it, at step 0, which no purge hides
            text = yaml.safe_dump(config, sort_keys=False)
            self.writer.add_text("config", f"```yaml\n{text}```", global_step=0)
            self.writer.flush()

    def log(self, row: dict[str, Any]) -> None:
        self.step = int(row["iteration"])
        for key, value in row.items():
            if key != "iteration":
                self.writer.add_scalar(key, value, self.step)
        self.writer.flush()

    def finish(self, final: dict[str, float]) -> None:
        hparams = {k: v for k, v in flatten(self.config).items() if isinstance(v, (bool, int, float, str))}
        # run_name ".": in this run's own folder, beside its scalars, where TensorBoard pairs them
        self.writer.add_hparams(hparams, dict(final), run_name=".", global_step=self.step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _run_id(path: Path) -> tuple[str | None, Path]:
    """The id an earlier session of this run stored in `path` (None if none), and the path."""
    if not path.is_file():
        return None, path
    return path.read_text().strip() or None, path


class WandbLogger(_Backend):
    """Weights & Biases: one wandb run per metalearn run, in RUN/wandb/ (offline by default: upload it later with
    `wandb sync RUN/wandb/offline-run-*`). A resume continues the same wandb run (its id is kept in
    RUN/wandb/metalearn-run-id)."""

    def __init__(self, run_dir: Path, project: str = "metalearn", entity: str | None = None, mode: str = "offline"):
        super().__init__(run_dir)
        self.wandb = _require("wandb", "wandb", "wandb")
        self.project, self.entity, self.mode = project, entity, mode
        self.run: Any = None

    def start(self, first_iteration: int) -> None:
        run_id, id_file = _run_id(self.run_dir / "wandb" / "metalearn-run-id")
        if run_id is None:
            run_id = uuid.uuid4().hex[:12]
            id_file.parent.mkdir(parents=True, exist_ok=True)
            id_file.write_text(run_id + "\n")
        self.run = self.wandb.init(
            project=self.project,
            entity=self.entity,
            mode=self.mode,
            dir=str(self.run_dir),
            id=run_id,
            resume="allow",
            settings=self.wandb.Settings(console="off", silent=True),  # stdout carries only metalearn's result line
        )

    def log_config(self, config: dict[str, Any]) -> None:
        self.run.config.update(config, allow_val_change=True)

    def log(self, row: dict[str, Any]) -> None:
        self.run.log({k: v for k, v in row.items() if k != "iteration"}, step=int(row["iteration"]))

    def finish(self, final: dict[str, float]) -> None:
        self.run.summary.update(final)
        self.run.finish()
        self.run = None

    def close(self) -> None:
        if self.run is not None:
            self.run.finish(exit_code=1)  # stopped before the end
            self.run = None


class MlflowLogger(_Backend):
    """MLflow: one run of `experiment` per metalearn run, in the store `tracking_uri` (None: file:RUN/mlruns),
    through MlflowClient (no process-wide MLflow state but MLFLOW_ALLOW_FILE_STORE=true, which MLflow 3 asks of
    a file store). The config goes in as params (dotted keys), each row's
    scalars as metrics at step `iteration`; a resume continues the same MLflow run (its id is kept in
    RUN/mlflow-run-id). MLflow cannot hide points, so a resumed run may show twice the steps logged between its
    checkpoint and the moment it stopped."""

    def __init__(self, run_dir: Path, experiment: str = "metalearn", tracking_uri: str | None = None) -> None:
        super().__init__(run_dir)
        self.client_class = _require("mlflow.tracking", "mlflow", "mlflow").MlflowClient
        self.entities = _require("mlflow.entities", "mlflow", "mlflow")
        self.experiment = experiment
        self.tracking_uri = tracking_uri or (self.run_dir.resolve() / "mlruns").as_uri()
        self.client: Any = None
        self.run_id: str | None = None
        self.continued = False
        self.step = 0

    def start(self, first_iteration: int) -> None:
        if self.tracking_uri.startswith("file:"):  # MLflow 3 keeps its file store behind this switch
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = self.client_class(tracking_uri=self.tracking_uri)
        self.step = first_iteration - 1
        run_id, id_file = _run_id(self.run_dir / "mlflow-run-id")
        self.continued = run_id is not None
        if run_id is None:
            found = self.client.get_experiment_by_name(self.experiment)
            experiment_id = found.experiment_id if found else self.client.create_experiment(self.experiment)
            run_id = self.client.create_run(experiment_id, run_name=self.run_dir.name).info.run_id
            id_file.write_text(run_id + "\n")
        else:
            self.client.update_run(run_id, status="RUNNING")
        self.run_id = run_id

    def log_config(self, config: dict[str, Any]) -> None:
        if self.continued:  # params cannot change; the first session logged them
            return
        flat = flatten(config)
        params = [self.entities.Param(k, v if isinstance(v, str) else json.dumps(v)) for k, v in flat.items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=params[i : i + 100])

    def _metrics(self, values: Mapping[str, Any], step: int) -> None:
        now = int(time.time() * 1000)
        metrics = [self.entities.Metric(k, float(v), now, step) for k, v in values.items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def log(self, row: dict[str, Any]) -> None:
        self.step = int(row["iteration"])
        self._metrics({k: v for k, v in row.items() if k != "iteration"}, self.step)

    def finish(self, final: dict[str, float]) -> None:
        if final:
            self._metrics(final, self.step)
        self.client.set_terminated(self.run_id, status="FINISHED")
        self.run_id = None

    def close(self) -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, status="KILLED")  # stopped before the end
            self.run_id = None


class RunLogger:
    """A run's logger: the chosen backend, started by the trainer, finished by metalearn.run. Closed once: by
    `finish`, by `close`, or at the latest when it is garbage-collected or the interpreter exits."""

    def __init__(self, backend: MetricsLogger, config: dict[str, Any]) -> None:
        self.backend, self.config = backend, config
        self._close = weakref.finalize(self, backend.close)

    def start(self, first_iteration: int) -> None:
        self.backend.start(first_iteration)
        self.backend.log_config(self.config)

    def log(self, row: dict[str, Any]) -> None:
        self.backend.log(dict(row))

    def finish(self, results: Mapping[str, Any]) -> None:
        """The run ended with `results` (results.json's values): the backend gets the final test metrics."""
        try:
            self.backend.finish(final_metrics(results))
        finally:
            self.close()

    def close(self) -> None:
        self._close()


def build_logger(cfg_logger: Any, run_dir: Path, resolved_config: Any) -> RunLogger:
    """The logger `cfg_logger` (a validated `logger` node) chooses, for the run in `run_dir` whose config is
    `resolved_config` (a DictConfig or plain dict). Writes nothing; ConfigError if an optional package is missing."""
    if isinstance(resolved_config, DictConfig):
        resolved_config = OmegaConf.to_container(resolved_config, resolve=True)
    node = cfg_logger if cfg_logger is not None else {"_target_": f"{__name__}.JsonlLogger"}
    return RunLogger(build(node, run_dir=Path(run_dir)), dict(resolved_config))
