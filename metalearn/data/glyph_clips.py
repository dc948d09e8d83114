"""`glyph_clips`: a procedural few-shot video data set, generated from a seed in seconds, no download.

A class is a glyph (a random character as in `glyphs`) together with a motion: a translation along a random
direction, a rotation, or a change of scale. Each clip re-draws the glyph with jitter (as `glyphs` does for
each image) and moves it over `frames` frames, at a speed and phase of its own. Each glyph makes
`motions_per_glyph` classes, in pairs whose motions are each other's time reversal (one way along a line and
back, clockwise and anticlockwise, growing and shrinking): a clip of one class played backwards is a clip of the
other, so a learner that averages over frames cannot tell the two apart, and only the order of the frames can
(tests/video). A glyph's classes are in the same split; meta-train, validation and test classes are disjoint.

Clips are grayscale, ink bright (255) on a dark background (0), cached as uint8 [N, T, 1, H, W].
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from metalearn.cache import cache_file
from metalearn.data.class_store import ClassStore, SplitData
from metalearn.data.glyphs import jittered, random_characters, render

GENERATOR_VERSION = 1
MOTIONS = ("translate", "rotate", "scale")
_TRANSLATE, _ROTATE, _SCALE = range(len(MOTIONS))
_SIZE = 0.6  # the glyph's scale in the frame, leaving room to move
_SHIFT = 0.17  # translation: from -_SHIFT to +_SHIFT along the class's direction
_TURN = math.radians(80.0)  # rotation: from -_TURN to +_TURN
_SCALES = (0.4, 0.8)  # scale: from the first to the second


def _motion(kind: Tensor, direction: Tensor, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Each frame's rotation angle, scale and shift for motion progress u in [0, 1]: kind, direction [m] and
    u [m, T] -> angle [m, T], scale [m, T], shift [m, T, 2]."""
    s = 2 * u - 1  # -1 .. 1
    kind = kind[:, None]
    angle = torch.where(kind == _ROTATE, _TURN * s, torch.zeros_like(s))
    log_lo, log_hi = math.log(_SCALES[0]), math.log(_SCALES[1])
    scale = torch.where(kind == _SCALE, torch.exp(log_lo + (log_hi - log_lo) * u), torch.full_like(u, _SIZE))
    along = torch.stack([torch.cos(direction), torch.sin(direction)], -1)[:, None]  # [m, 1, 2]
    shift = torch.where((kind == _TRANSLATE)[..., None], _SHIFT * s[..., None] * along, torch.zeros_like(along))
    return angle, scale, shift.expand(-1, u.shape[1], -1)


def generate_glyph_clips(
    num_classes: int,
    clips_per_class: int,
    frames: int,
    image_size: int,
    seed: int,
    jitter: float,
    motions_per_glyph: int = 6,
) -> ClassStore:
    """`num_classes` classes of `clips_per_class` clips of `frames` frames (deterministic in `seed`). Each glyph
    gives `motions_per_glyph` (2, 4 or 6) consecutive classes: pairs of classes 2p and 2p + 1 move it with one
    motion kind, in opposite directions of time; a glyph's pairs have different motion kinds."""
    gen = torch.Generator().manual_seed(seed)
    glyphs, pairs = num_classes // motions_per_glyph, num_classes // 2
    points, mask = random_characters(glyphs, gen)
    kinds = torch.stack([torch.randperm(len(MOTIONS), generator=gen) for _ in range(glyphs)])
    kind = kinds[:, : motions_per_glyph // 2].reshape(-1)  # [pairs]
    direction = 2 * math.pi * torch.rand(pairs, generator=gen)
    per_pair = 2 * clips_per_class  # clips of class 2p, then of class 2p + 1
    n = pairs * per_pair
    glyph_points = points.repeat_interleave(motions_per_glyph * clips_per_class, dim=0)
    style, width = jittered(glyph_points, gen, jitter)  # one drawing per clip
    # each clip's own speed and phase: progress u runs over [phase, phase + span] of [0, 1]
    span = 0.8 + 0.2 * torch.rand(n, 1, generator=gen)
    phase = (1 - span) * torch.rand(n, 1, generator=gen)
    u = phase + span * torch.linspace(0, 1, frames)[None]
    backwards = (torch.arange(n) % per_pair >= clips_per_class)[:, None]
    u = torch.where(backwards, 1 - u, u)
    angle, scale, shift = _motion(kind.repeat_interleave(per_pair), direction.repeat_interleave(per_pair), u)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    affine = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # [n, T, 2, 2]
    centred = style.reshape(n, 1, -1, 2) - 0.5
    moved = centred @ affine.transpose(-1, -2) + 0.5 + shift[:, :, None]  # [n, T, S*4, 2]
    strokes = moved.reshape(n * frames, *points.shape[1:])
    drawn = render(
        strokes,
        mask.repeat_interleave(motions_per_glyph * clips_per_class * frames, dim=0),
        width.repeat_interleave(frames) * (0.5 + 0.5 * scale.reshape(-1) / _SIZE),  # the pen scales half as much
        image_size,
    )
    clips = drawn.reshape(n, frames, 1, image_size, image_size)
    offsets = torch.arange(num_classes + 1) * clips_per_class
    names = [
        f"glyph{p // (motions_per_glyph // 2):05d}-{MOTIONS[int(kind[p])]}-{way}"
        for p in range(pairs)
        for way in ("forward", "backward")
    ]
    return ClassStore(clips, offsets, names)


def load_glyph_clips(
    train_classes: int = 384,
    val_classes: int = 96,
    test_classes: int = 192,
    motions_per_glyph: int = 6,
    clips_per_class: int = 20,
    frames: int = 8,
    image_size: int = 28,
    jitter: float = 0.06,
    seed: int = 0,
    cache_dir: str | None = None,
) -> SplitData:
    """Build (or load from the cache) the glyph_clips splits; class counts are multiples of motions_per_glyph (a
    glyph's classes stay in one split). The data seed is independent of the run seed."""
    settings = dict(
        version=GENERATOR_VERSION,
        classes=[train_classes, val_classes, test_classes],
        motions_per_glyph=motions_per_glyph,
        clips_per_class=clips_per_class,
        frames=frames,
        image_size=image_size,
        jitter=jitter,
        seed=seed,
    )
    total = train_classes + val_classes + test_classes
    store = ClassStore.load_or_build(
        cache_file(cache_dir, "glyph_clips", settings),
        lambda: generate_glyph_clips(total, clips_per_class, frames, image_size, seed, jitter, motions_per_glyph),
    )
    return SplitData.consecutive(store, train_classes, val_classes, "glyph_clips", frames=frames)
