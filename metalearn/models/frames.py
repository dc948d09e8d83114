"""Image backbones on clips: the same network on every frame, features kept per frame.

A clip data set gives inputs [T, C, H, W] (metalearn.data.frames); an image backbone built for that shape runs
on the N * T frames of N clips as one batch and returns per-frame features [N, T, D]. Learners decide how time is
used: ProtoNet averages over frames, OTAM aligns them, TRX relates tuples of them.
"""

from __future__ import annotations

from typing import Callable, Sequence

from torch import Tensor

from metalearn.errors import ConfigError


def frames_and_image(input_shape: Sequence[int], model: str) -> tuple[int | None, tuple[int, int, int]]:
    """Split a data set's input shape into (frames, (C, H, W)): (T, ...) for clips [T, C, H, W], (None, ...) for
    images [C, H, W]; anything else is refused naming `model`."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        return None, shape  # type: ignore[return-value]
    if len(shape) == 4:
        return shape[0], shape[1:]  # type: ignore[return-value]
    raise ConfigError(
        f"model={model} needs images [C, H, W] or clips [T, C, H, W], but the data set gives inputs of shape {shape}; "
        "use model=mlp for vector inputs such as dataset=sinusoid"
    )


def per_frame(encode: Callable[[Tensor], Tensor], x: Tensor, frames: int | None) -> Tensor:
    """`encode` ([M, C, H, W] -> [M, D]) on images as they are, or on every frame of clips [N, T, C, H, W],
    giving [N, T, D]."""
    if frames is None:
        return encode(x)
    features = encode(x.reshape(-1, *x.shape[-3:]))
    return features.reshape(*x.shape[:-3], features.shape[-1])
