"""Pick the torch device named by the `device` config group."""

from __future__ import annotations

import torch

from metalearn.errors import ConfigError

DEVICE_NAMES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def resolve_device(name: str, index: int | None = None) -> torch.device:
    """auto: cuda if available, then mps, then cpu. An explicit device that is absent is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device=cuda was asked for, but torch sees no CUDA GPU here; use device=auto or device=cpu")
        count = torch.cuda.device_count()
        if index is not None and not 0 <= index < count:
            raise ConfigError(f"device.index={index} is invalid: this machine has {count} CUDA device(s), 0..{count - 1}")
        return torch.device("cuda", index or 0)
    if name == "mps":
        if not _mps_available():
            raise ConfigError("device=mps was asked for, but torch sees no Apple MPS device; use device=auto or device=cpu")
        return torch.device("mps")
    return torch.device("cpu")
