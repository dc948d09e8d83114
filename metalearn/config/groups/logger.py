"""Schemas of the `logger` group: where metrics rows go besides metrics.jsonl (metalearn.training.loggers).

metrics.jsonl is written whatever the logger; every backend receives the same rows (same keys, same values).
The packages of tensorboard, wandb and mlflow are optional extras, checked when the logger is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from metalearn.config.options import WANDB_MODES
from metalearn.config.schema import Schema, one_of


@dataclass
class JsonlLoggerConfig(Schema):
    """metrics.jsonl only (the default)."""

    _target_: str = "metalearn.training.loggers.JsonlLogger"


@dataclass
class CsvLoggerConfig(Schema):
    """metrics.csv beside metrics.jsonl: a header row (every key seen), then one row per metrics row."""

    _target_: str = "metalearn.training.loggers.CsvLogger"


@dataclass
class TensorBoardLoggerConfig(Schema):
    """TensorBoard event files in RUN/tensorboard/: scalars, the config as text, hparams with the test metric."""

    _target_: str = "metalearn.training.loggers.TensorBoardLogger"


@dataclass
class WandbLoggerConfig(Schema):
    """Weights & Biases, offline by default (RUN/wandb/; upload later with `wandb sync`)."""

    _target_: str = "metalearn.training.loggers.WandbLogger"
    project: str = "metalearn"
    entity: Optional[str] = None  # the team or user; None for the default entity
    mode: str = "offline"  # offline | online

    def check(self, prefix: str) -> None:
        one_of(f"{prefix}.mode", self.mode, WANDB_MODES)


@dataclass
class MlflowLoggerConfig(Schema):
    """MLflow: one run of `experiment`, in RUN/mlruns/ unless tracking_uri names another store."""

    _target_: str = "metalearn.training.loggers.MlflowLogger"
    experiment: str = "metalearn"
    tracking_uri: Optional[str] = None  # None: file:RUN/mlruns
