"""Schemas of the `dataset` group for natural-image data: mini-ImageNet, CIFAR-FS, FC100 and `folder`.

(Kept beside groups/dataset.py so the image data sets' keys, which share the augmentation options,
read as one family.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from metalearn.config.schema import Schema, at_least, one_of
from metalearn.data.augment import AUGMENTS, check_augment_keys
from metalearn.errors import ConfigError


@dataclass
class NaturalImageKeys(Schema):
    """Keys every natural-image data set has: where it is, its size and its training augmentation."""

    root: Optional[str] = None
    image_size: int = 84
    augment: str = "none"
    augment_crop_scale: List[float] = field(default_factory=lambda: [0.5, 1.0])
    augment_flip: float = 0.5
    augment_jitter: float = 0.4
    cache_dir: Optional[str] = None

    def check(self, prefix: str) -> None:
        if not 8 <= self.image_size <= 512:
            raise ConfigError(f"{prefix}.image_size={self.image_size} is invalid: must be between 8 and 512")
        one_of(f"{prefix}.augment", self.augment, AUGMENTS)
        check_augment_keys(self.augment_crop_scale, self.augment_flip, self.augment_jitter, prefix)


@dataclass
class MiniImageNetConfig(NaturalImageKeys):
    _target_: str = "metalearn.data.mini_imagenet.load_mini_imagenet"
    source: str = "auto"

    def check(self, prefix: str) -> None:
        super().check(prefix)
        one_of(f"{prefix}.source", self.source, ("auto", "pickle", "csv"))


@dataclass
class CifarFSConfig(NaturalImageKeys):
    _target_: str = "metalearn.data.cifar_fs.load_cifar_fs"
    image_size: int = 32
    download: bool = False


@dataclass
class FC100Config(CifarFSConfig):
    _target_: str = "metalearn.data.cifar_fs.load_fc100"


@dataclass
class FolderConfig(NaturalImageKeys):
    _target_: str = "metalearn.data.folder.load_folder"
    channels: str = "auto"
    split_fractions: List[float] = field(default_factory=lambda: [0.64, 0.16, 0.2])
    split_seed: int = 0

    def check(self, prefix: str) -> None:
        super().check(prefix)
        one_of(f"{prefix}.channels", str(self.channels), ("auto", "1", "3"))
        fractions = list(self.split_fractions)
        if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
            raise ConfigError(
                f"{prefix}.split_fractions={fractions} is invalid: must be three positive fractions "
                "(train, val, test) that sum to 1, e.g. [0.64, 0.16, 0.2]"
            )
        at_least(f"{prefix}.split_seed", self.split_seed, 0)


SCHEMAS = (MiniImageNetConfig, CifarFSConfig, FC100Config, FolderConfig)
