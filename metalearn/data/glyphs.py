"""`glyphs`: a procedural Omniglot-like data set, generated from a seed in seconds, no download.

Each class is a random character of 1 to 4 smooth pen strokes (cubic Bezier curves). Each image
re-draws the character with jitter of the stroke points, of the pen width and a small affine
transform, like different people drawing the same letter. Images are grayscale, ink bright (255)
on a dark background (0), the same polarity as our Omniglot images. Meta-train, validation and test
classes are drawn from one stream and are therefore disjoint.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from metalearn.cache import cache_file
from metalearn.data.class_store import ClassStore, SplitData

GENERATOR_VERSION = 1
_MAX_STROKES = 4
_CURVE_POINTS = 10


def random_characters(n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Control points [n, strokes, 4, 2] in the unit square and a stroke mask [n, strokes]."""
    n_strokes = torch.randint(1, _MAX_STROKES + 1, (n,), generator=gen)
    mask = torch.arange(_MAX_STROKES)[None, :] < n_strokes[:, None]
    start = 0.2 + 0.6 * torch.rand(n, _MAX_STROKES, 1, 2, generator=gen)
    steps = 0.22 * torch.randn(n, _MAX_STROKES, 3, 2, generator=gen)
    points = torch.cat([start, start + torch.cumsum(steps, dim=2)], dim=2).clamp(0.1, 0.9)
    return points, mask


def _bezier(points: Tensor) -> Tensor:
    """Sample cubic Bezier curves: [..., 4, 2] -> [..., _CURVE_POINTS, 2]."""
    t = torch.linspace(0, 1, _CURVE_POINTS)[:, None]
    p0, p1, p2, p3 = (points[..., i : i + 1, :] for i in range(4))
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3


def _render(points: Tensor, mask: Tensor, width: Tensor, size: int) -> Tensor:
    """Rasterise strokes with soft edges. points [m, S, 4, 2], mask [m, S], width [m] -> uint8 [m, 1, size, size]."""
    m = points.shape[0]
    curve = _bezier(points)  # [m, S, T, 2]
    a, b = curve[:, :, :-1], curve[:, :, 1:]
    a, b = a.reshape(m, -1, 2), b.reshape(m, -1, 2)  # segments [m, G, 2]
    valid = mask[:, :, None].expand(-1, -1, _CURVE_POINTS - 1).reshape(m, -1)
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    grid = torch.stack(torch.meshgrid(coords, coords, indexing="xy"), dim=-1).reshape(-1, 2)  # [P, 2]
    # Point-to-segment distances written as matrix products, so no [m, P, G, 2] tensor is built.
    ab = b - a  # [m, G, 2]
    ab2 = (ab * ab).sum(-1).clamp_min(1e-12)[:, None, :]  # [m, 1, G]
    dot = grid @ ab.transpose(1, 2) - (a * ab).sum(-1)[:, None, :]  # (p - a).(b - a): [m, P, G]
    ap2 = (grid * grid).sum(-1)[None, :, None] - 2 * grid @ a.transpose(1, 2) + (a * a).sum(-1)[:, None, :]
    t = (dot / ab2).clamp_(0, 1)
    dist2 = ap2 - t * (2 * dot - t * ab2)
    dist = dist2.masked_fill_(~valid[:, None, :], float("inf")).amin(dim=-1).clamp_min(0).sqrt()
    soft = 0.6 / size
    ink = ((width[:, None] - dist) / soft + 0.5).clamp(0, 1)
    return (ink * 255).round().to(torch.uint8).reshape(m, 1, size, size)


def render(points: Tensor, mask: Tensor, width: Tensor, size: int) -> Tensor:
    """Draw m characters: control points [m, S, 4, 2] in the unit square, stroke mask [m, S], pen widths [m] ->
    uint8 [m, 1, size, size]."""
    chunk = 32  # small chunks keep the [chunk, pixels, segments] temporaries in cache
    parts = [
        _render(points[i : i + chunk], mask[i : i + chunk], width[i : i + chunk], size)
        for i in range(0, len(points), chunk)
    ]
    return torch.cat(parts) if parts else torch.zeros(0, 1, size, size, dtype=torch.uint8)


def jittered(points: Tensor, gen: torch.Generator, jitter: float) -> tuple[Tensor, Tensor]:
    """One drawing per row: jittered control points [m, S, 4, 2] and pen widths [m]."""
    m = points.shape[0]
    pts = points + jitter * torch.randn(points.shape, generator=gen)
    angle = math.radians(10.0) * torch.randn(m, generator=gen)
    scale = 0.88 + 0.22 * torch.rand(m, generator=gen)
    shear = 0.12 * torch.randn(m, generator=gen)
    shift = 0.04 * torch.randn(m, 2, generator=gen)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    affine = torch.stack([torch.stack([cos, -sin + shear], -1), torch.stack([sin, cos], -1)], -2)  # [m, 2, 2]
    moved = (pts.reshape(m, -1, 2) - 0.5) @ affine.transpose(1, 2) + 0.5 + shift[:, None]
    width = 0.030 + 0.025 * torch.rand(m, generator=gen)
    return moved.reshape(points.shape), width


def generate_glyphs(num_classes: int, images_per_class: int, image_size: int, seed: int, jitter: float) -> ClassStore:
    """Generate `num_classes` characters with `images_per_class` drawings each (deterministic in `seed`)."""
    gen = torch.Generator().manual_seed(seed)
    points, mask = random_characters(num_classes, gen)
    drawn, width = jittered(points.repeat_interleave(images_per_class, dim=0), gen, jitter)
    images = render(drawn, mask.repeat_interleave(images_per_class, dim=0), width, image_size)
    offsets = torch.arange(num_classes + 1) * images_per_class
    return ClassStore(images, offsets, [f"glyph{c:05d}" for c in range(num_classes)])


def load_glyphs(
    train_classes: int = 1000,
    val_classes: int = 200,
    test_classes: int = 400,
    images_per_class: int = 20,
    image_size: int = 28,
    jitter: float = 0.09,
    seed: int = 0,
    cache_dir: str | None = None,
) -> SplitData:
    """Build (or load from the cache) the glyphs splits. The data seed is independent of the run seed."""
    settings = dict(
        version=GENERATOR_VERSION,
        classes=[train_classes, val_classes, test_classes],
        images_per_class=images_per_class,
        image_size=image_size,
        jitter=jitter,
        seed=seed,
    )
    store = ClassStore.load_or_build(
        cache_file(cache_dir, "glyphs", settings),
        lambda: generate_glyphs(train_classes + val_classes + test_classes, images_per_class, image_size, seed, jitter),
    )
    return SplitData.consecutive(store, train_classes, val_classes, "glyphs")
