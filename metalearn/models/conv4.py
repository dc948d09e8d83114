"""Conv4: the standard few-shot backbone (Vinyals et al. 2016; Finn et al. 2017; Snell et al. 2017)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from metalearn.errors import ConfigError
from metalearn.models.frames import frames_and_image, per_frame
from metalearn.models.pooling import pool_then_activate


def conv_block(in_channels: int, out_channels: int, pool: bool = True, stride: int = 1) -> nn.Sequential:
    conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1)
    pooling = nn.MaxPool2d(2) if pool else None
    return nn.Sequential(conv, nn.BatchNorm2d(out_channels), *pool_then_activate(nn.ReLU(inplace=True), pooling))


def _downsampled(size: int, downsample: str) -> int:
    """A side after one downsampling block: 2x2 max-pooling floors, a stride-2 3x3 convolution (padding 1) ceils."""
    return size // 2 if downsample == "pool" else (size + 1) // 2


def _vmapped(x: torch.Tensor) -> bool:
    is_batched = getattr(torch._C._functorch, "is_batchedtensor", None)
    return bool(is_batched is not None and is_batched(x))


class Conv4(nn.Module):
    """Four blocks of 3x3 convolution, BatchNorm, ReLU and 2x2 max-pooling; the feature map is flattened.

    Variants: MAML's Omniglot network (Finn et al. 2017) downsamples by stride-2 convolutions instead of pooling
    (`downsample="stride"`) and averages its last maps (`average_pool=True`); its mini-ImageNet network is this one
    with 32 filters (`hidden_channels=32`). conf/model/conv4_strided.yaml and conv4_32.yaml select them.

    Args:
        input_shape: (C, H, W) of the images, or (T, C, H, W) of clips, from the data set.
        hidden_channels (int, 64): filters per convolution.
        num_blocks (int, 4): blocks; each halves the height and width.
        pool_blocks (int | None, None): how many of the first blocks downsample (None: all). Relation Networks pool
            in the first two only, keeping 64x7x7 maps on Omniglot (64x21x21 on 84x84 images) for the relation module.
        downsample (str, "pool"): how a block halves the maps: "pool" (2x2 max-pooling) or "stride" (the
            convolution's stride 2, no pooling).
        average_pool (bool, False): the features are the last maps averaged over space, hidden_channels values
            (else the flattened maps).
        memory_format (str, "auto"): the activations' layout. channels_last (NHWC) lets ATen's CPU
            max-pooling and BatchNorm kernels vectorise over channels (docs/performance.md); auto is
            channels_last on the CPU and contiguous elsewhere. The layout changes only the order of
            floating-point sums, not the model.

    Shapes: clips [N, T, C, H, W] (input_shape (T, C, H, W)) give per-frame features [N, T, out_features].
    images [N, C, H, W] -> features [N, out_features], the flattened maps of feature_shape
    (hidden_channels, H >> pool_blocks, W >> pool_blocks): 64 features on 28x28 inputs, 1600 on 84x84 (strided:
    sides rounded up, 2x2 maps on 28x28); with average_pool, [N, hidden_channels] and feature_shape None.

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
        downsample: str = "pool",
        average_pool: bool = False,
    ) -> None:
        super().__init__()
        self.memory_format = memory_format
        self.frames, (channels, height, width) = frames_and_image(input_shape, "conv4")
        pools = num_blocks if pool_blocks is None else min(pool_blocks, num_blocks)
        if downsample == "pool" and min(height, width) < 2**pools:
            raise ConfigError(
                f"model.num_blocks={num_blocks} is too many for {height}x{width} images: each block halves the size"
            )
        blocks = []
        for i in range(num_blocks):
            halves = i < pools
            pool, stride = halves and downsample == "pool", 2 if halves and downsample == "stride" else 1
            blocks.append(conv_block(channels if i == 0 else hidden_channels, hidden_channels, pool, stride))
            if halves:
                height, width = _downsampled(height, downsample), _downsampled(width, downsample)
        if average_pool:
            self.encoder = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.feature_shape: tuple[int, int, int] | None = None
            self.out_features = hidden_channels
        else:
            self.encoder = nn.Sequential(*blocks, nn.Flatten())
            self.feature_shape = (hidden_channels, height, width)
            self.out_features = hidden_channels * height * width

    def channels_last(self, x: torch.Tensor) -> bool:
        """Whether to lay `x` out channels-last; never inside torch.func.vmap, whose per-task view cannot take it."""
        wanted = self.memory_format == "channels_last" or (self.memory_format == "auto" and x.device.type == "cpu")
        return wanted and not _vmapped(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return per_frame(self._encode, x, self.frames)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last(x):
            # empty_like + copy_ rather than .contiguous(channels_last): a 1-channel image is already
            # "contiguous" in both layouts, and convolutions would then keep the NCHW layout
            x = torch.empty_like(x, memory_format=torch.channels_last).copy_(x)
        return self.encoder(x)
