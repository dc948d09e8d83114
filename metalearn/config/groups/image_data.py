"""Schemas of the `dataset` group for natural-image data: mini-ImageNet, CIFAR-FS, FC100, `folder` and video.

(Kept beside groups/dataset.py so the image data sets' keys, which share the augmentation options,
read as one family.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence

from metalearn.config.options import FOLDER_CHANNELS, MINI_IMAGENET_SOURCES, NATURAL_AUGMENTS, VIDEO_BENCHMARKS
from metalearn.config.schema import Schema, at_least, at_most, one_of
from metalearn.errors import ConfigError


@dataclass
class NaturalImageKeys(Schema):
    """Keys every natural-image data set has: where it is, its size and its training augmentation."""

    root: Optional[str] = None
    image_size: int = 84  # images are resized to image_size x image_size (antialiased)
    augment: str = "none"  # none | standard: random resized crop, horizontal flip, colour jitter (training only)
    augment_crop_scale: List[float] = field(default_factory=lambda: [0.5, 1.0])  # crop area, fraction of the image
    augment_flip: float = 0.5  # probability of a horizontal flip
    augment_jitter: float = 0.4  # brightness / contrast / saturation factors drawn from [1 - j, 1 + j]
    cache_dir: Optional[str] = None  # None: $METALEARN_CACHE or ~/.cache/metalearn

    def check(self, prefix: str) -> None:
        if not 8 <= self.image_size <= 512:
            raise ConfigError(f"{prefix}.image_size={self.image_size} is invalid: must be between 8 and 512")
        one_of(f"{prefix}.augment", self.augment, NATURAL_AUGMENTS)
        check_augment_keys(self.augment_crop_scale, self.augment_flip, self.augment_jitter, prefix)


@dataclass
class MiniImageNetConfig(NaturalImageKeys):
    _target_: str = "metalearn.data.mini_imagenet.load_mini_imagenet"
    source: str = "auto"  # auto (pickles first, then csv) | pickle | csv

    def check(self, prefix: str) -> None:
        super().check(prefix)
        one_of(f"{prefix}.source", self.source, MINI_IMAGENET_SOURCES)


@dataclass
class CifarFSConfig(NaturalImageKeys):
    _target_: str = "metalearn.data.cifar_fs.load_cifar_fs"
    image_size: int = 32
    root: Optional[str] = None  # None: $METALEARN_CACHE/cifar100 (torchvision's cifar-100-python/ inside)
    download: bool = False  # fetch CIFAR-100 into root (md5-checked)


@dataclass
class FC100Config(CifarFSConfig):
    _target_: str = "metalearn.data.cifar_fs.load_fc100"


@dataclass
class FolderConfig(NaturalImageKeys):
    _target_: str = "metalearn.data.folder.load_folder"
    channels: str = "auto"  # auto (1 if every image is grayscale, else 3) | 1 | 3
    split_fractions: List[float] = field(default_factory=lambda: [0.64, 0.16, 0.2])  # train / val / test classes
    split_seed: int = 0

    def check(self, prefix: str) -> None:
        super().check(prefix)
        one_of(f"{prefix}.channels", str(self.channels), FOLDER_CHANNELS)
        fractions = list(self.split_fractions)
        if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
            raise ConfigError(
                f"{prefix}.split_fractions={fractions} is invalid: must be three positive fractions "
                "(train, val, test) that sum to 1, e.g. [0.64, 0.16, 0.2]"
            )
        at_least(f"{prefix}.split_seed", self.split_seed, 0)


@dataclass
class VideoConfig(NaturalImageKeys):
    """A few-shot video benchmark, or your own split lists, over videos on disk (metalearn.data.video)."""

    _target_: str = "metalearn.data.video.load_video"
    benchmark: Optional[str] = None  # kinetics100 | ssv2_small | ssv2_full | ucf101 | hmdb51; null: your own splits
    splits: Optional[str] = None  # your own split lists: a folder of train.txt, val.txt, test.txt (CLASS/VIDEO lines)
    frames: int = 8  # frames the model sees per clip: one from each of `frames` equal segments
    stored_frames: int = 16  # frames decoded and cached per video (segment centres), from which training draws
    image_size: int = 112  # shorter side resized to it, then a centre crop (the papers: 224 for ResNet-50)
    channels: int = 3  # 3 (RGB) | 1 (grayscale)
    augment_crop_scale: List[float] = field(default_factory=lambda: [0.7, 1.0])
    augment_jitter: float = 0.0

    def check(self, prefix: str) -> None:
        super().check(prefix)
        if self.benchmark is None and self.splits is None:
            raise ConfigError(
                f"dataset=video needs {prefix}.splits=FOLDER (its train.txt, val.txt and test.txt list CLASS/VIDEO "
                f"lines), or choose a built-in benchmark: dataset={', '.join(VIDEO_BENCHMARKS)}"
            )
        if self.benchmark is not None and self.splits is not None:
            raise ConfigError(
                f"{prefix}.splits={self.splits} replaces the split lists of {prefix}.benchmark={self.benchmark}: "
                f"remove one (dataset=video takes your own lists)"
            )
        if self.benchmark is not None:
            one_of(f"{prefix}.benchmark", self.benchmark, tuple(VIDEO_BENCHMARKS))
        at_least(f"{prefix}.frames", self.frames, 1)
        at_most(f"{prefix}.frames", self.frames, 256)
        at_least(f"{prefix}.stored_frames", self.stored_frames, 1)
        at_most(f"{prefix}.stored_frames", self.stored_frames, 1024)
        one_of(f"{prefix}.channels", str(self.channels), ("1", "3"))


SCHEMAS = (MiniImageNetConfig, CifarFSConfig, FC100Config, FolderConfig, VideoConfig)


def check_augment_keys(crop_scale: Sequence[float], flip: float, jitter: float, prefix: str = "dataset") -> None:
    """Reject impossible augmentation settings, naming the key and what is allowed."""
    if len(crop_scale) != 2 or not 0 < crop_scale[0] <= crop_scale[1] <= 1:
        raise ConfigError(
            f"{prefix}.augment_crop_scale={list(crop_scale)} is invalid: must be [min, max] with 0 < min <= max <= 1 "
            "(the crop's area as a fraction of the image)"
        )
    if not 0 <= flip <= 1:
        raise ConfigError(f"{prefix}.augment_flip={flip} is invalid: must be a probability in [0, 1]")
    if not 0 <= jitter <= 1:
        raise ConfigError(f"{prefix}.augment_jitter={jitter} is invalid: must be in [0, 1]")
