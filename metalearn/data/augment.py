"""Per-image training augmentation on float image batches [..., C, H, W] in [0, 1].

All images of a batch are transformed at once on their device: one affine_grid/grid_sample call for the
geometry, elementwise maths for the colour; the random parameters come from the sampler's
torch.Generator, so a seed gives the same augmented episodes on every run. The sampler applies the
transform to training batches only, never in evaluation.

`standard` (natural images) follows the usual recipe for mini-ImageNet / CIFAR-FS (e.g. Lee et al.
2019, MetaOptNet; the random resized crop of Szegedy et al. 2015): random resized crop (area fraction
and aspect ratio drawn uniformly, the ratio on a log scale), horizontal flip, and brightness /
contrast / saturation jitter as in torchvision's ColorJitter (fixed order). (Characters have their own
small random affine, metalearn/data/character_affine.py.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

Transform = Callable[[Tensor, torch.Generator], Tensor]
_LUMA = (0.299, 0.587, 0.114)


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def _warp(x: Tensor, theta: Tensor) -> Tensor:
    """Resample each image of x [M, C, H, W] through its affine map theta [M, 2, 3] (output -> input coords)."""
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _flat(x: Tensor) -> tuple[Tensor, tuple[int, ...]]:
    if x.dim() < 3:
        raise ValueError(f"augmentation needs images [..., C, H, W], got shape {tuple(x.shape)}")
    return x.reshape(-1, *x.shape[-3:]), tuple(x.shape)


@dataclass(frozen=True)
class NaturalAugment:
    """Random resized crop + horizontal flip + colour jitter (see the module docstring)."""

    crop_scale: tuple[float, float] = (0.5, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: float = 0.5
    jitter: float = 0.4

    def __call__(self, x: Tensor, gen: torch.Generator, group: int = 1) -> Tensor:
        """Augment x [..., C, H, W]; each run of `group` consecutive images (the frames of a clip) shares one draw
        of the random parameters."""
        imgs, shape = _flat(x)
        m = imgs.shape[0] // group
        # Crop: its width and height as fractions of the image side; centre anywhere the crop fits.
        area = _uniform(m, *self.crop_scale, gen)
        log_ratio = _uniform(m, math.log(self.crop_ratio[0]), math.log(self.crop_ratio[1]), gen)
        w = (area * log_ratio.exp()).sqrt().clamp(max=1.0)
        h = (area / log_ratio.exp()).sqrt().clamp(max=1.0)
        cx = (1 - w) * (2 * torch.rand(m, generator=gen) - 1)
        cy = (1 - h) * (2 * torch.rand(m, generator=gen) - 1)
        mirror = torch.where(torch.rand(m, generator=gen) < self.flip, -1.0, 1.0)
        zero = torch.zeros(m)
        theta = torch.stack([torch.stack([w * mirror, zero, cx], -1), torch.stack([zero, h, cy], -1)], 1)
        out = _warp(imgs, theta.repeat_interleave(group, 0))
        if self.jitter > 0:
            out = colour_jitter(out, self.jitter, gen, group)
        return out.clamp_(0, 1).reshape(shape)


def colour_jitter(x: Tensor, strength: float, gen: torch.Generator, group: int = 1) -> Tensor:
    """Brightness, contrast and (for RGB) saturation, each scaled by a factor drawn from U[1-s, 1+s], one draw per
    run of `group` consecutive images; contrast pivots on each image's own mean."""
    m, c = x.shape[0] // group, x.shape[1]
    low, high = max(0.0, 1 - strength), 1 + strength
    factors = _uniform(3 * m, low, high, gen).view(3, m, 1, 1, 1).repeat_interleave(group, 1).to(x.device, x.dtype)
    x = (x * factors[0]).clamp(0, 1)
    gray = _gray(x)
    mean = gray.mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * factors[1] + mean).clamp(0, 1)
    if c == 3:
        gray = _gray(x)
        x = ((x - gray) * factors[2] + gray).clamp(0, 1)
    return x


def _gray(x: Tensor) -> Tensor:
    if x.shape[1] != 3:
        return x
    weights = torch.tensor(_LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True)


def make_transform(
    kind: str = "none",
    crop_scale: Sequence[float] = (0.5, 1.0),
    flip: float = 0.5,
    jitter: float = 0.4,
    frames: int | None = None,
) -> Optional[Transform]:
    """The training transform named by `dataset.augment` (None for `none`); the values are checked by the
    data set's schema (metalearn.config.groups.image_data). With `frames`, inputs are clips [..., T, C, H, W] and
    every frame of a clip gets the same crop, flip and colour change."""
    if kind != "standard":
        return None
    augment = NaturalAugment(crop_scale=(float(crop_scale[0]), float(crop_scale[1])), flip=flip, jitter=jitter)
    if frames is None:
        return augment
    return lambda x, gen: augment(x, gen, group=frames)
