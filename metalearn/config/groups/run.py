"""Schemas of the `device` and `trainer` groups and the top-level keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from metalearn.config.schema import Schema, at_least, one_of, positive
from metalearn.device import DEVICE_NAMES
from metalearn.errors import ConfigError


# --- device and trainer -------------------------------------------------------------------------
@dataclass
class DeviceConfig(Schema):
    name: str = "auto"
    index: Optional[int] = None
    deterministic: bool = False
    reuse_memory: bool = True

    def check(self, prefix: str) -> None:
        one_of(f"{prefix}.name", self.name, DEVICE_NAMES)


@dataclass
class TrainerConfig(Schema):
    _target_: str = "metalearn.training.trainer.Trainer"
    iterations: int = 1500
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    val_interval: int = 250
    checkpoint_interval: int = 500
    log_interval: int = 50
    grad_clip: Optional[float] = None
    scheduler: str = "none"
    min_lr: float = 0.0
    progress: bool = True
    resume: bool = False

    def check(self, prefix: str) -> None:
        at_least(f"{prefix}.iterations", self.iterations, 0)
        one_of(f"{prefix}.optimizer", self.optimizer, ("adam", "sgd"))
        positive(f"{prefix}.lr", self.lr)
        at_least(f"{prefix}.weight_decay", self.weight_decay, 0)
        for key in ("val_interval", "checkpoint_interval", "log_interval"):
            at_least(f"{prefix}.{key}", getattr(self, key), 1)
        if self.grad_clip is not None:
            positive(f"{prefix}.grad_clip", self.grad_clip)
        one_of(f"{prefix}.scheduler", self.scheduler, ("none", "cosine"))
        at_least(f"{prefix}.min_lr", self.min_lr, 0)


@dataclass
class EvalConfig(Schema):
    """How the final model is scored: the sampler's fixed test episodes, or Lake et al.'s one-shot runs."""

    protocol: str = "episodes"
    runs_dir: Optional[str] = None

    def check(self, prefix: str) -> None:
        one_of(f"{prefix}.protocol", self.protocol, ("episodes", "omniglot_runs"))
        if self.protocol == "omniglot_runs" and not self.runs_dir:
            raise ConfigError(
                f"{prefix}.protocol=omniglot_runs needs {prefix}.runs_dir=DIR: the folder holding run01..run20 "
                f"(Lake et al.'s one-shot runs) or the path of all_runs.zip"
            )


@dataclass
class TopLevel(Schema):
    mode: str = "train"
    seed: int = 0
    checkpoint: Optional[str] = None
    resume: Optional[str] = None

    def check(self, prefix: str) -> None:
        one_of("mode", self.mode, ("train", "eval"))
