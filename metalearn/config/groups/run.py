"""Schemas of the `device` and `trainer` groups and the top-level keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from metalearn.config.options import DEVICE_NAMES, EVAL_PROTOCOLS, MODES, OPTIMIZERS, PRECISIONS, SCHEDULERS
from metalearn.config.schema import Schema, at_least, at_most, one_of, positive, seed_range
from metalearn.errors import ConfigError


# --- device and trainer -------------------------------------------------------------------------
@dataclass
class DeviceConfig(Schema):
    """Where a run computes (metalearn.device)."""

    name: str = "auto"  # auto (cuda, then mps, then cpu) | cpu | cuda | mps
    index: Optional[int] = None  # which CUDA device; None for the current one
    deterministic: bool = False  # torch deterministic algorithms (slower; bitwise-reproducible runs)
    reuse_memory: bool = True  # keep freed memory for reuse (glibc malloc settings): fewer page faults on the CPU
    # several processes (torchrun, srun): how long a process waits for the others at a collective before it stops
    # with an error, in seconds (a process stuck or gone, instead of a hang)
    timeout_s: float = 600.0
    # fp32 | bf16 | fp16: the dtype of forward passes (autocast); fp16 scales the loss (metalearn.execution.precision)
    precision: str = "fp32"
    # torch.compile the vmapped per-task function (or a metric learner's backbone); refused where it cannot work
    # (metalearn.execution.compiled). compile_backend: torch.compile's backend (inductor; aot_eager traces only)
    compile: bool = False
    compile_backend: str = "inductor"

    def check(self, prefix: str) -> None:
        one_of(f"{prefix}.name", self.name, DEVICE_NAMES)
        positive(f"{prefix}.timeout_s", self.timeout_s)
        one_of(f"{prefix}.precision", self.precision, PRECISIONS)


@dataclass
class TrainerConfig(Schema):
    """The meta-training loop (metalearn.training.trainer.Trainer)."""

    _target_: str = "metalearn.training.trainer.Trainer"
    iterations: int = 1500  # meta-updates
    optimizer: str = "adam"  # adam | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    val_interval: int = 250  # validate on the fixed validation episodes every N iterations (and at the end)
    checkpoint_interval: int = 500  # write checkpoints/last.pt every N iterations (and at the end)
    log_interval: int = 50  # one metrics.jsonl row every N iterations
    grad_clip: Optional[float] = None  # max gradient norm, or None
    scheduler: str = "none"  # none | cosine (annealing of the outer lr to min_lr) | step (lr * lr_gamma every N)
    min_lr: float = 0.0  # cosine: the final learning rate
    lr_step_size: int = 2000  # step: iterations between decays (Prototypical Networks: 2,000 episodes)
    lr_gamma: float = 0.5  # step: the factor at each decay (Prototypical Networks: halved)
    momentum: float = 0.0  # sgd: momentum (MetaOptNet, Baseline: 0.9)
    nesterov: bool = False  # sgd: Nesterov momentum
    progress: bool = True  # tqdm progress bars
    resume: bool = False  # continue the run in hydra.run.dir from its checkpoints/last.pt

    def check(self, prefix: str) -> None:
        at_least(f"{prefix}.iterations", self.iterations, 0)
        at_most(f"{prefix}.iterations", self.iterations, 1_000_000_000)
        one_of(f"{prefix}.optimizer", self.optimizer, OPTIMIZERS)
        positive(f"{prefix}.lr", self.lr)
        at_least(f"{prefix}.weight_decay", self.weight_decay, 0)
        for key in ("val_interval", "checkpoint_interval", "log_interval"):
            at_least(f"{prefix}.{key}", getattr(self, key), 1)
        if self.grad_clip is not None:
            positive(f"{prefix}.grad_clip", self.grad_clip)
        one_of(f"{prefix}.scheduler", self.scheduler, SCHEDULERS)
        at_least(f"{prefix}.min_lr", self.min_lr, 0)
        at_least(f"{prefix}.lr_step_size", self.lr_step_size, 1)
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"{prefix}.momentum={self.momentum} is invalid: must be in [0, 1)")
        if (self.momentum or self.nesterov) and self.optimizer != "sgd":
            raise ConfigError(
                f"{prefix}.momentum and {prefix}.nesterov apply to {prefix}.optimizer=sgd only (Adam keeps its own "
                f"moments); set {prefix}.optimizer=sgd or remove them"
            )
        if self.nesterov and not self.momentum:
            raise ConfigError(f"{prefix}.nesterov=true needs {prefix}.momentum above 0")
        positive(f"{prefix}.lr_gamma", self.lr_gamma)


@dataclass
class EvalConfig(Schema):
    """How the final model is scored: the sampler's fixed test episodes, or Lake et al.'s one-shot runs."""

    protocol: str = "episodes"
    runs_dir: Optional[str] = None

    def check(self, prefix: str) -> None:
        one_of(f"{prefix}.protocol", self.protocol, EVAL_PROTOCOLS)
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
        one_of("mode", self.mode, MODES)
        seed_range("seed", self.seed)
