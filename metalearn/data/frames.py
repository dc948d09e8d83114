"""Which frames of a clip a model sees: T segments, one frame from each (Wang et al. 2016, TSN).

A clip is stored with F frames (uint8 [F, C, H, W]); the model sees `frames` = T of them. The stored frames
are cut into T equal segments; training takes a random frame within each segment (a new draw per clip, from
the sampler's seeded generator), evaluation the frame at each segment's centre, as the few-shot video papers
do (Zhu & Yang 2018; Cao et al. 2020; Perrett et al. 2021). When F < T frames repeat, evenly.
"""

from __future__ import annotations

import torch
from torch import Tensor


def segment_starts(stored: int, frames: int) -> tuple[Tensor, Tensor]:
    """Each segment's first stored frame and length: long [frames] each (segments of a real-valued length
    stored / frames, rounded down at both ends, so every segment holds at least one frame when stored >= frames)."""
    bounds = torch.arange(frames + 1, dtype=torch.float64) * stored / frames
    starts = bounds[:-1].floor().long()
    ends = bounds[1:].floor().long().clamp_min(starts + 1)
    return starts, ends - starts


def frame_indices(stored: int, frames: int, n_clips: int, train: bool, gen: torch.Generator | None = None) -> Tensor:
    """Indices [n_clips, frames] of the stored frames each clip shows: random within each segment in training
    (one draw per clip and segment from `gen`), each segment's centre in evaluation (the same for every clip)."""
    if not train:  # the frame under each segment's midpoint, (k + 1/2) * stored / frames
        centres = ((torch.arange(frames, dtype=torch.float64) + 0.5) * stored / frames).floor().long()
        return centres.expand(n_clips, frames)
    starts, lengths = segment_starts(stored, frames)
    offsets = (torch.rand(n_clips, frames, generator=gen, dtype=torch.float64) * lengths).long()
    return (starts + offsets).clamp_max(stored - 1)


def frame_rows(clips: Tensor, stored: int, frames: int, train: bool, gen: torch.Generator | None = None) -> Tensor:
    """The rows of the stored frames the given clips show, for a table of all frames [N * stored, ...] (frame f of
    clip c is row c * stored + f): clip indices [...] -> [..., frames], drawn as frame_indices draws them."""
    idx = frame_indices(stored, frames, clips.numel(), train, gen).to(clips.device)
    return (clips.reshape(-1, 1) * stored + idx).reshape(*clips.shape, frames)
