"""Conv4: the standard few-shot backbone (Vinyals et al. 2016; Finn et al. 2017; Snell et al. 2017).

Four blocks of 3x3 convolution with 64 filters, BatchNorm, ReLU and 2x2 max-pooling; the feature map
is flattened (64 features on 28x28 inputs, 1600 on 84x84).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from metalearn.errors import ConfigError


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class Conv4(nn.Module):
    def __init__(self, input_shape: Sequence[int], hidden_channels: int = 64, num_blocks: int = 4) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ConfigError(
                f"model=conv4 needs image data [C, H, W], but the data set gives inputs of shape {tuple(input_shape)}; "
                "use model=mlp for vector inputs such as dataset=sinusoid"
            )
        channels, height, width = input_shape
        if min(height, width) < 2**num_blocks:
            raise ConfigError(
                f"model.num_blocks={num_blocks} is too many for {height}x{width} images: each block halves the size"
            )
        blocks = [conv_block(channels if i == 0 else hidden_channels, hidden_channels) for i in range(num_blocks)]
        self.encoder = nn.Sequential(*blocks, nn.Flatten())
        self.out_features = hidden_channels * (height >> num_blocks) * (width >> num_blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)
