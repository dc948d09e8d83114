"""Schemas of the `model` group."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

from metalearn.config.options import MEMORY_FORMATS
from metalearn.config.schema import Schema, at_least, at_most, one_of


# --- model --------------------------------------------------------------------------------------
@dataclass
class Conv4Config(Schema):
    _target_: str = "metalearn.models.conv4.Conv4"
    hidden_channels: int = 64
    num_blocks: int = 4
    memory_format: str = "auto"  # auto | channels_last | contiguous (auto: channels_last on the CPU, measured faster)

    def check(self, prefix: str) -> None:
        at_least(f"{prefix}.hidden_channels", self.hidden_channels, 1)
        at_most(f"{prefix}.hidden_channels", self.hidden_channels, 4096)
        at_least(f"{prefix}.num_blocks", self.num_blocks, 1)
        one_of(f"{prefix}.memory_format", self.memory_format, MEMORY_FORMATS)


@dataclass
class MLPConfig(Schema):
    _target_: str = "metalearn.models.mlp.MLP"
    hidden_sizes: List[int] = field(default_factory=lambda: [40, 40])

    def check(self, prefix: str) -> None:
        for i, size in enumerate(self.hidden_sizes):
            at_least(f"{prefix}.hidden_sizes[{i}]", size, 1)
            at_most(f"{prefix}.hidden_sizes[{i}]", size, 65_536)
