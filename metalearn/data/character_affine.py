"""A small random affine transform of character images, for meta-training augmentation (`dataset.augment=affine`).

Each image gets its own rotation (up to ±10 degrees), scale (±10%), shear (±0.1) and shift (up to 10% of
the image side), the kind of variation between people drawing the same character (Lake et al. 2015
model it as affine noise on strokes). It runs on float batches [..., C, H, W] on their own device with
one affine_grid/grid_sample call; the parameters come from the sampler's torch.Generator, so training
is reproducible. The area moved in from outside is background (0: our characters are bright on dark).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

MAX_DEGREES = 10.0
MAX_SCALE = 0.10
MAX_SHEAR = 0.10
MAX_SHIFT = 0.10


def random_affine(x: Tensor, generator: torch.Generator) -> Tensor:
    """Transform every image of `x` [..., C, H, W] by its own small random affine map."""
    flat = x.reshape(-1, *x.shape[-3:])
    u = torch.rand(flat.shape[0], 5, generator=generator) * 2 - 1  # on the CPU, like the sampler's generator
    angle = math.radians(MAX_DEGREES) * u[:, 0]
    scale = 1 + MAX_SCALE * u[:, 1]
    shear = MAX_SHEAR * u[:, 2]
    shift = 2 * MAX_SHIFT * u[:, 3:]  # grid coordinates span [-1, 1], so a shift of 10% of the side is 0.2
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale  # theta maps output to input coordinates
    theta = torch.stack(
        [torch.stack([cos, -sin + shear, shift[:, 0]], -1), torch.stack([sin, cos, shift[:, 1]], -1)], -2
    ).to(device=flat.device, dtype=flat.dtype)
    grid = F.affine_grid(theta, list(flat.shape), align_corners=False)
    out = F.grid_sample(flat, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.reshape(x.shape)
