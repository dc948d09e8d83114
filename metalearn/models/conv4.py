"""Conv4: the standard few-shot backbone (Vinyals et al. 2016; Finn et al. 2017; Snell et al. 2017)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from metalearn.errors import ConfigError


def conv_block(in_channels: int, out_channels: int, pool: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1), nn.BatchNorm2d(out_channels)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True), *([nn.MaxPool2d(2)] if pool else []))


def _vmapped(x: torch.Tensor) -> bool:
    is_batched = getattr(torch._C._functorch, "is_batchedtensor", None)
    return bool(is_batched is not None and is_batched(x))


class Conv4(nn.Module):
    """Four blocks of 3x3 convolution, BatchNorm, ReLU and 2x2 max-pooling; the feature map is flattened.

    Args:
        input_shape: (C, H, W) of the images, from the data set.
        hidden_channels (int, 64): filters per convolution.
        num_blocks (int, 4): blocks; each halves the height and width.
        pool_blocks (int | None, None): how many of the first blocks max-pool (None: all). Relation Networks pool in
            the first two only, keeping 64x7x7 maps on Omniglot (64x21x21 on 84x84 images) for the relation module.
        memory_format (str, "auto"): the activations' layout. channels_last (NHWC) lets ATen's CPU
            max-pooling and BatchNorm kernels vectorise over channels (docs/performance.md); auto is
            channels_last on the CPU and contiguous elsewhere. The layout changes only the order of
            floating-point sums, not the model.

    Shapes: images [N, C, H, W] -> features [N, out_features], the flattened maps of feature_shape
    (hidden_channels, H >> pool_blocks, W >> pool_blocks): 64 features on 28x28 inputs, 1600 on 84x84.

    References:
        Vinyals et al., "Matching Networks for One Shot Learning", NeurIPS 2016.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        hidden_channels: int = 64,
        num_blocks: int = 4,
        memory_format: str = "auto",
        pool_blocks: int | None = None,
    ) -> None:
        super().__init__()
        self.memory_format = memory_format
        if len(input_shape) != 3:
            raise ConfigError(
                f"model=conv4 needs image data [C, H, W], but the data set gives inputs of shape {tuple(input_shape)}; "
                "use model=mlp for vector inputs such as dataset=sinusoid"
            )
        channels, height, width = input_shape
        pools = num_blocks if pool_blocks is None else min(pool_blocks, num_blocks)
        if min(height, width) < 2**pools:
            raise ConfigError(
                f"model.num_blocks={num_blocks} is too many for {height}x{width} images: each block halves the size"
            )
        blocks = [
            conv_block(channels if i == 0 else hidden_channels, hidden_channels, pool=i < pools)
            for i in range(num_blocks)
        ]
        self.encoder = nn.Sequential(*blocks, nn.Flatten())
        self.feature_shape = (hidden_channels, height >> pools, width >> pools)
        self.out_features = hidden_channels * (height >> pools) * (width >> pools)

    def channels_last(self, x: torch.Tensor) -> bool:
        """Whether to lay `x` out channels-last; never inside torch.func.vmap, whose per-task view cannot take it."""
        wanted = self.memory_format == "channels_last" or (self.memory_format == "auto" and x.device.type == "cpu")
        return wanted and not _vmapped(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last(x):
            # empty_like + copy_ rather than .contiguous(channels_last): a 1-channel image is already
            # "contiguous" in both layouts, and convolutions would then keep the NCHW layout
            x = torch.empty_like(x, memory_format=torch.channels_last).copy_(x)
        return self.encoder(x)
