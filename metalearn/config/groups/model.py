"""Schemas of the `model` group."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from metalearn.config.options import CONV4_DOWNSAMPLING, MEMORY_FORMATS, MLP_ACTIVATIONS
from metalearn.config.schema import Schema, at_least, at_most, one_of
from metalearn.errors import ConfigError


# --- model --------------------------------------------------------------------------------------
@dataclass
class Conv4Config(Schema):
    _target_: str = "metalearn.models.conv4.Conv4"
    hidden_channels: int = 64
    num_blocks: int = 4
    memory_format: str = "auto"  # auto | channels_last | contiguous (auto: channels_last on the CPU, measured faster)
    pool_blocks: Optional[int] = None  # blocks that downsample, from the first (null: all; Relation Networks: 2)
    downsample: str = "pool"  # pool (2x2 max-pooling) | stride (stride-2 convolutions: MAML's Omniglot net)
    average_pool: bool = False  # features: the last maps averaged to hidden_channels values (else flattened)

    def check(self, prefix: str) -> None:
        at_least(f"{prefix}.hidden_channels", self.hidden_channels, 1)
        at_most(f"{prefix}.hidden_channels", self.hidden_channels, 4096)
        at_least(f"{prefix}.num_blocks", self.num_blocks, 1)
        at_most(f"{prefix}.num_blocks", self.num_blocks, 64)
        if self.pool_blocks is not None:
            at_least(f"{prefix}.pool_blocks", self.pool_blocks, 0)
        one_of(f"{prefix}.memory_format", self.memory_format, MEMORY_FORMATS)
        one_of(f"{prefix}.downsample", self.downsample, CONV4_DOWNSAMPLING)


@dataclass
class ResNet12Config(Schema):
    _target_: str = "metalearn.models.resnet12.ResNet12"
    widths: List[int] = field(default_factory=lambda: [64, 160, 320, 640])
    drop_rate: float = 0.0  # DropBlock in the last two blocks (MetaOptNet: 0.1)
    block_size: int = 5  # DropBlock's square (MetaOptNet: 5 on mini-ImageNet, 2 on CIFAR-FS)
    average_pool: bool = False  # features: the last maps averaged to widths[-1] values (else flattened)

    def check(self, prefix: str) -> None:
        if len(self.widths) != 4:
            raise ConfigError(f"{prefix}.widths={list(self.widths)} is invalid: ResNet-12 has 4 blocks, give 4 widths")
        for i, w in enumerate(self.widths):
            at_least(f"{prefix}.widths[{i}]", w, 1)
            at_most(f"{prefix}.widths[{i}]", w, 4096)
        if not 0 <= self.drop_rate < 1:
            raise ConfigError(f"{prefix}.drop_rate={self.drop_rate} is invalid: must be in [0, 1)")
        at_least(f"{prefix}.block_size", self.block_size, 1)


@dataclass
class TorchvisionResNetConfig(Schema):
    _target_: str = "metalearn.models.torchvision_resnet.TorchvisionResNet"
    depth: int = 18  # 18 | 34 | 50
    weights: Optional[str] = (
        None  # torchvision's ImageNet state-dict file for this depth (never downloaded); None: random
    )

    def check(self, prefix: str) -> None:
        if self.depth not in (18, 34, 50):
            raise ConfigError(f"{prefix}.depth={self.depth} is invalid: must be 18, 34 or 50")


@dataclass
class MLPConfig(Schema):
    _target_: str = "metalearn.models.mlp.MLP"
    hidden_sizes: List[int] = field(default_factory=lambda: [40, 40])
    activation: str = "relu"  # relu | tanh (MAML's policies)

    def check(self, prefix: str) -> None:
        one_of(f"{prefix}.activation", self.activation, MLP_ACTIVATIONS)
        for i, size in enumerate(self.hidden_sizes):
            at_least(f"{prefix}.hidden_sizes[{i}]", size, 1)
            at_most(f"{prefix}.hidden_sizes[{i}]", size, 65_536)
