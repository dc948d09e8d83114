"""Schemas of the `dataset` group."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from metalearn.config.schema import Schema, at_least, one_of
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
    jitter: float = 0.09
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


@dataclass
class OmniglotConfig(Schema):
    _target_: str = "metalearn.data.omniglot.load_omniglot"
    root: Optional[str] = None
    split: str = "vinyals"
    image_size: int = 28
    rotations: List[int] = field(default_factory=lambda: [0, 90, 180, 270])
    val_alphabets: Optional[int] = None
    split_seed: int = 0
    augment: str = "none"
    download: bool = False
    cache_dir: Optional[str] = None

    def check(self, prefix: str) -> None:
        one_of(f"{prefix}.split", self.split, ("vinyals", "lake", "minimal1", "minimal2"))
        one_of(f"{prefix}.augment", self.augment, ("none", "affine"))
        if not 8 <= self.image_size <= 105:
            raise ConfigError(
                f"{prefix}.image_size={self.image_size} is invalid: must be between 8 and 105 (28, 84 and 105 are usual)"
            )
        if (
            not self.rotations
            or len(set(self.rotations)) != len(self.rotations)
            or not set(self.rotations) <= {0, 90, 180, 270}
        ):
            raise ConfigError(
                f"{prefix}.rotations={list(self.rotations)} is invalid: a list of distinct angles from [0, 90, 180, 270], e.g. [0] for none"
            )
        if self.val_alphabets is not None:
            at_least(f"{prefix}.val_alphabets", self.val_alphabets, 1)
            if self.split == "vinyals":
                raise ConfigError(
                    f"{prefix}.val_alphabets={self.val_alphabets} does not apply to {prefix}.split=vinyals, whose validation "
                    f"alphabets are fixed; use it with split=lake, minimal1 or minimal2, or remove it"
                )
