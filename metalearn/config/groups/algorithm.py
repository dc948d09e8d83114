"""Schemas of the `algorithm` group."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from metalearn.algorithms.functional import check_checkpoint_inner, resolve_batching
from metalearn.config.schema import Schema, at_least, one_of, positive
from metalearn.errors import ConfigError


# --- algorithm ----------------------------------------------------------------------------------
@dataclass
class ProtoNetConfig(Schema):
    _target_: str = "metalearn.algorithms.protonet.ProtoNet"
    batch_norm: str = "running"

    def check(self, prefix: str) -> None:
        one_of(f"{prefix}.batch_norm", self.batch_norm, ("transductive", "running"))


@dataclass
class MAMLConfig(Schema):
    _target_: str = "metalearn.algorithms.maml.MAML"
    inner_lr: float = 0.4
    inner_steps: int = 1
    eval_inner_lr: Optional[float] = None
    eval_inner_steps: int = 3
    first_order: bool = False
    batch_norm: str = "transductive"
    batching: str = "auto"
    checkpoint_inner: bool = False
    multi_step_loss: bool = False
    multi_step_loss_iterations: int = 0
    per_layer_inner_lr: bool = False
    per_step_batch_norm: bool = False
    first_order_iterations: int = 0

    def check(self, prefix: str) -> None:
        positive(f"{prefix}.inner_lr", self.inner_lr)
        if self.eval_inner_lr is not None:
            positive(f"{prefix}.eval_inner_lr", self.eval_inner_lr)
        at_least(f"{prefix}.inner_steps", self.inner_steps, 1)
        at_least(f"{prefix}.eval_inner_steps", self.eval_inner_steps, 0)
        at_least(f"{prefix}.multi_step_loss_iterations", self.multi_step_loss_iterations, 0)
        at_least(f"{prefix}.first_order_iterations", self.first_order_iterations, 0)
        check_batching(prefix, self.batching, self.batch_norm)
        check_checkpoint_inner(self.checkpoint_inner, self.batching, prefix)


def check_batching(prefix: str, batching: str, batch_norm: str) -> None:
    """The gradient-based family's execution keys: vmap needs per-task batch statistics."""
    one_of(f"{prefix}.batch_norm", batch_norm, ("transductive", "running"))
    resolve_batching(batching, batch_norm, prefix)


@dataclass
class ANILConfig(MAMLConfig):
    _target_: str = "metalearn.algorithms.anil.ANIL"

    def check(self, prefix: str) -> None:
        super().check(prefix)
        if self.per_step_batch_norm:
            raise ConfigError(
                f"{prefix}.per_step_batch_norm=true does not apply to anil: its inner loop adapts only the head, "
                "so the body's BatchNorm has no inner steps"
            )


@dataclass
class MetaSGDConfig(MAMLConfig):
    _target_: str = "metalearn.algorithms.metasgd.MetaSGD"

    def check(self, prefix: str) -> None:
        super().check(prefix)
        if self.per_layer_inner_lr:
            raise ConfigError(
                f"{prefix}.per_layer_inner_lr=true does not apply to metasgd, whose rates are per parameter entry"
            )


@dataclass
class ReptileConfig(Schema):
    _target_: str = "metalearn.algorithms.reptile.Reptile"
    inner_optimizer: str = "adam"
    inner_lr: float = 0.001
    inner_steps: int = 5
    adam_betas: List[float] = field(default_factory=lambda: [0.0, 0.999])
    inner_data: str = "all"
    eval_inner_lr: Optional[float] = None
    eval_inner_steps: int = 50
    outer_lr: float = 1.0
    outer_lr_final: float = 0.0
    evaluation: str = "transductive"
    batch_norm: str = "transductive"
    batching: str = "auto"

    def check(self, prefix: str) -> None:
        one_of(f"{prefix}.inner_optimizer", self.inner_optimizer, ("sgd", "adam"))
        positive(f"{prefix}.inner_lr", self.inner_lr)
        if self.eval_inner_lr is not None:
            positive(f"{prefix}.eval_inner_lr", self.eval_inner_lr)
        at_least(f"{prefix}.inner_steps", self.inner_steps, 1)
        at_least(f"{prefix}.eval_inner_steps", self.eval_inner_steps, 0)
        if len(self.adam_betas) != 2 or not all(0 <= b < 1 for b in self.adam_betas):
            raise ConfigError(f"{prefix}.adam_betas={list(self.adam_betas)} is invalid: must be two numbers in [0, 1)")
        one_of(f"{prefix}.inner_data", self.inner_data, ("all", "support"))
        positive(f"{prefix}.outer_lr", self.outer_lr)
        at_least(f"{prefix}.outer_lr_final", self.outer_lr_final, 0)
        one_of(f"{prefix}.evaluation", self.evaluation, ("transductive", "non_transductive"))
        check_batching(prefix, self.batching, self.batch_norm)
