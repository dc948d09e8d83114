"""Schemas of the `dataset` group."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from metalearn.config.schema import Schema, at_least
from metalearn.errors import ConfigError


# --- dataset ------------------------------------------------------------------------------------
@dataclass
class GlyphsConfig(Schema):
    _target_: str = "metalearn.data.glyphs.load_glyphs"
    train_classes: int = 1000
    val_classes: int = 200
    test_classes: int = 400
    images_per_class: int = 20
    image_size: int = 28
    jitter: float = 0.035
    seed: int = 0
    cache_dir: Optional[str] = None

    def check(self, prefix: str) -> None:
        for key in ("train_classes", "val_classes", "test_classes", "images_per_class"):
            at_least(f"{prefix}.{key}", getattr(self, key), 2)
        at_least(f"{prefix}.image_size", self.image_size, 8)
        at_least(f"{prefix}.jitter", self.jitter, 0)


@dataclass
class SinusoidConfig(Schema):
    _target_: str = "metalearn.data.sinusoid.SinusoidTasks"
    amplitude_min: float = 0.1
    amplitude_max: float = 5.0
    phase_min: float = 0.0
    phase_max: float = 3.141592653589793
    x_min: float = -5.0
    x_max: float = 5.0

    def check(self, prefix: str) -> None:
        for key in ("amplitude", "phase", "x"):
            low, high = getattr(self, f"{key}_min"), getattr(self, f"{key}_max")
            if not low < high:
                raise ConfigError(f"{prefix}.{key}_min={low} is invalid: must be below {prefix}.{key}_max={high}")
