"""ResNet-12, the backbone of most few-shot results since TADAM (Oreshkin et al. 2018) and MetaOptNet (Lee et al.
2019), with DropBlock (Ghiasi et al. 2018)."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from metalearn.errors import ConfigError
from metalearn.models.frames import frames_and_image, per_frame
from metalearn.models.pooling import pool_then_activate


class DropBlock(nn.Module):
    """DropBlock (Ghiasi, Lin & Le, NeurIPS 2018): drops contiguous block_size x block_size regions of a feature map
    in training, rescaling the rest so the expected activation is unchanged; the identity in evaluation.

    Args:
        drop_rate (float): the fraction of units to drop; block_size (int): the side of a dropped square.

    Shapes: [N, C, H, W] -> the same.
    """

    def __init__(self, drop_rate: float, block_size: int) -> None:
        super().__init__()
        self.drop_rate, self.block_size = drop_rate, block_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_rate == 0:
            return x
        _, _, h, w = x.shape
        size = min(self.block_size, h, w)
        # the seed rate gamma of the paper's eq. 1: centres are drawn where a whole block fits
        gamma = self.drop_rate / size**2 * h * w / ((h - size + 1) * (w - size + 1))
        centres = torch.bernoulli(
            torch.full((x.shape[0], x.shape[1], h - size + 1, w - size + 1), gamma, device=x.device)
        )
        pad = size - 1
        blocks = F.max_pool2d(F.pad(centres, (pad, pad, pad, pad)), size, stride=1)  # each centre grows a block
        keep = 1 - blocks.to(x.dtype)
        return x * keep * keep.numel() / keep.sum().clamp_min(1)


class ResidualBlock(nn.Module):
    """Three 3x3 convolutions with BatchNorm and LeakyReLU(0.1), a 1x1 convolution with BatchNorm as the shortcut,
    2x2 max-pooling after the sum, then DropBlock."""

    def __init__(self, in_channels: int, out_channels: int, drop_rate: float, block_size: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(3):
            layers.append(nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1, bias=False))
            layers.append(nn.BatchNorm2d(out_channels))
            if i < 2:
                layers.append(nn.LeakyReLU(0.1))
        self.body = nn.Sequential(*layers)
        self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))
        self.out = nn.Sequential(
            *pool_then_activate(nn.LeakyReLU(0.1), nn.MaxPool2d(2)), DropBlock(drop_rate, block_size)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x) + self.shortcut(x))


class ResNet12(nn.Module):
    """Four residual blocks (widths 64-160-320-640 by default), each halving the height and width; the features are
    the flattened maps, or their spatial average with `average_pool=true`.

    Args:
        input_shape: (C, H, W) of the images (84x84 RGB in the papers), or (T, C, H, W) of clips (per-frame features
            [N, T, out_features]), from the data set.
        widths (list of 4 ints, [64, 160, 320, 640]): the blocks' channels.
        drop_rate (float, 0.0): DropBlock's drop rate in the last two blocks (MetaOptNet: 0.1).
        block_size (int, 5): DropBlock's block size (MetaOptNet: 5 on mini-ImageNet, 2 on CIFAR-FS).
        average_pool (bool, False): average the last maps to one vector of widths[-1] (feature_shape is then None).

    Shapes: images [N, C, H, W] -> features [N, out_features]: widths[-1] * (H >> 4) * (W >> 4) (640 * 5 * 5 on
    84x84), or widths[-1] with average pooling; feature_shape is (widths[-1], H >> 4, W >> 4).

    References:
        Oreshkin, Rodriguez & Lacoste, "TADAM: Task dependent adaptive metric for improved few-shot learning",
        NeurIPS 2018; Lee et al., "Meta-Learning with Differentiable Convex Optimization", CVPR 2019.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        widths: Sequence[int] = (64, 160, 320, 640),
        drop_rate: float = 0.0,
        block_size: int = 5,
        average_pool: bool = False,
    ) -> None:
        super().__init__()
        self.frames, (channels, height, width) = frames_and_image(input_shape, "resnet12")
        if min(height, width) < 16:
            raise ConfigError(f"model=resnet12 halves {height}x{width} images four times: it needs at least 16x16")
        blocks = []
        for i, out in enumerate(widths):
            blocks.append(
                ResidualBlock(channels if i == 0 else widths[i - 1], out, drop_rate if i >= 2 else 0.0, block_size)
            )
        self.blocks = nn.Sequential(*blocks)
        self.average_pool = average_pool
        maps = (widths[-1], height >> 4, width >> 4)
        self.feature_shape = None if average_pool else maps
        self.out_features = widths[-1] if average_pool else maps[0] * maps[1] * maps[2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return per_frame(self._encode, x, self.frames)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.blocks(x)
        return maps.mean(dim=(-2, -1)) if self.average_pool else maps.flatten(1)
