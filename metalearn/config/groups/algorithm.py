"""Schemas of the `algorithm` group."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from metalearn.config.schema import Schema, at_least, one_of, positive


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

    def check(self, prefix: str) -> None:
        positive(f"{prefix}.inner_lr", self.inner_lr)
        if self.eval_inner_lr is not None:
            positive(f"{prefix}.eval_inner_lr", self.eval_inner_lr)
        at_least(f"{prefix}.inner_steps", self.inner_steps, 1)
        at_least(f"{prefix}.eval_inner_steps", self.eval_inner_steps, 0)
        one_of(f"{prefix}.batch_norm", self.batch_norm, ("transductive", "running"))
