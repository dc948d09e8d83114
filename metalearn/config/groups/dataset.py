"""Schemas of the `dataset` group."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Optional

from metalearn.config.options import CHARACTER_AUGMENTS, NAVIGATION_REWARDS, OMNIGLOT_SPLITS
from metalearn.config.schema import Schema, at_least, at_most, one_of, positive, seed_range
from metalearn.errors import ConfigError


# --- dataset ------------------------------------------------------------------------------------
def check_drawing(prefix: str, image_size: int, seed: int, jitter: float) -> None:
    """The keys of the procedural data sets (glyphs, glyph_clips): image size, the data's seed, the jitter."""
    at_least(f"{prefix}.image_size", image_size, 8)
    at_most(f"{prefix}.image_size", image_size, 512)
    seed_range(f"{prefix}.seed", seed)
    at_least(f"{prefix}.jitter", jitter, 0)


@dataclass
class GlyphsConfig(Schema):
    _target_: str = "metalearn.data.glyphs.load_glyphs"
    train_classes: int = 1000
    val_classes: int = 200
    test_classes: int = 400
    images_per_class: int = 20
    image_size: int = 28
    jitter: float = 0.09  # standard deviation of the per-drawing stroke point jitter (unit square)
    seed: int = 0  # the data's own seed, independent of the run seed
    cache_dir: Optional[str] = None  # None: $METALEARN_CACHE or ~/.cache/metalearn

    def check(self, prefix: str) -> None:
        for key in ("train_classes", "val_classes", "test_classes", "images_per_class"):
            at_least(f"{prefix}.{key}", getattr(self, key), 2)
            at_most(f"{prefix}.{key}", getattr(self, key), 100_000)
        check_drawing(prefix, self.image_size, self.seed, self.jitter)


@dataclass
class GlyphClipsConfig(Schema):
    _target_: str = "metalearn.data.glyph_clips.load_glyph_clips"
    train_classes: int = 384  # multiples of motions_per_glyph: a glyph's classes stay in one split
    val_classes: int = 96
    test_classes: int = 192
    motions_per_glyph: int = 6  # 2, 4 or 6: one, two or three motion kinds per glyph, each both ways in time
    clips_per_class: int = 20
    frames: int = 8
    image_size: int = 28
    jitter: float = 0.06  # standard deviation of the per-clip stroke point jitter (unit square)
    seed: int = 0  # the data's own seed, independent of the run seed
    cache_dir: Optional[str] = None  # None: $METALEARN_CACHE or ~/.cache/metalearn

    def check(self, prefix: str) -> None:
        if self.motions_per_glyph not in (2, 4, 6):
            raise ConfigError(
                f"{prefix}.motions_per_glyph={self.motions_per_glyph} is invalid: must be 2, 4 or 6 (each of up to "
                "three motion kinds, both ways in time)"
            )
        for key in ("train_classes", "val_classes", "test_classes"):
            value = getattr(self, key)
            at_least(f"{prefix}.{key}", value, 2)
            at_most(f"{prefix}.{key}", value, 100_000)
            if value % self.motions_per_glyph:
                raise ConfigError(
                    f"{prefix}.{key}={value} is invalid: must be a multiple of {prefix}.motions_per_glyph="
                    f"{self.motions_per_glyph} (a glyph's classes are kept in one split)"
                )
        at_least(f"{prefix}.clips_per_class", self.clips_per_class, 2)
        at_most(f"{prefix}.clips_per_class", self.clips_per_class, 100_000)
        at_least(f"{prefix}.frames", self.frames, 2)
        at_most(f"{prefix}.frames", self.frames, 256)
        check_drawing(prefix, self.image_size, self.seed, self.jitter)


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
class Navigation2DConfig(Schema):
    _target_: str = "metalearn.data.navigation.Navigation2D"
    REINFORCEMENT: ClassVar[bool] = True  # of reinforcement learning (validate._check_reinforcement)
    goal_low: float = -0.5  # goals ~ U[goal_low, goal_high]^2 (Finn et al. 2017)
    goal_high: float = 0.5
    action_limit: float = 0.1  # each action coordinate is clipped to [-action_limit, action_limit]
    action_scale: float = 1.0  # actions are multiplied by it before the clipping (MAML-RL's rllab code: 0.1)
    horizon: int = 100  # steps per trajectory
    reward: str = "distance"  # distance (the MAML-RL code, whose returns are published) | squared_distance

    def check(self, prefix: str) -> None:
        if not self.goal_low < self.goal_high:
            raise ConfigError(
                f"{prefix}.goal_low={self.goal_low} is invalid: must be below {prefix}.goal_high={self.goal_high}"
            )
        positive(f"{prefix}.action_limit", self.action_limit)
        positive(f"{prefix}.action_scale", self.action_scale)
        at_least(f"{prefix}.horizon", self.horizon, 1)
        at_most(f"{prefix}.horizon", self.horizon, 100_000)
        one_of(f"{prefix}.reward", self.reward, NAVIGATION_REWARDS)


@dataclass
class BanditConfig(Schema):
    _target_: str = "metalearn.data.bandit.Bandit"
    REINFORCEMENT: ClassVar[bool] = True  # of reinforcement learning (validate._check_reinforcement)
    arms: int = 5  # Bernoulli arms per bandit, probabilities ~ U[0, 1] per task (Duan et al. 2016)
    horizon: int = 10  # pulls per trajectory

    def check(self, prefix: str) -> None:
        at_least(f"{prefix}.arms", self.arms, 2)
        at_most(f"{prefix}.arms", self.arms, 10_000)
        at_least(f"{prefix}.horizon", self.horizon, 1)
        at_most(f"{prefix}.horizon", self.horizon, 100_000)


@dataclass
class GymConfig(Schema):
    """A gymnasium environment with a task hook (metalearn.data.gym_family.GymTaskFamily)."""

    _target_: str = "metalearn.data.gym_family.GymTaskFamily"
    REINFORCEMENT: ClassVar[bool] = True  # of reinforcement learning (validate._check_reinforcement)
    env: str = ""  # a gymnasium id, or package.module:function returning the environment
    horizon: int = 200  # steps per trajectory
    env_kwargs: Optional[Dict[str, Any]] = None  # passed to the environment's constructor

    def check(self, prefix: str) -> None:
        if not self.env:
            raise ConfigError(
                f"{prefix}.env is not set: name a gymnasium id or package.module:function whose environment has "
                "sample_tasks and set_task (or use dataset=half_cheetah_vel, half_cheetah_dir)"
            )
        at_least(f"{prefix}.horizon", self.horizon, 1)
        at_most(f"{prefix}.horizon", self.horizon, 100_000)


@dataclass
class OmniglotConfig(Schema):
    _target_: str = "metalearn.data.omniglot.load_omniglot"
    root: Optional[str] = None  # folder holding images_background.zip etc.; None: $METALEARN_CACHE/omniglot
    split: str = "vinyals"  # vinyals (1028/172/423 characters), lake, minimal1, minimal2
    image_size: int = 28  # 28, 84 or 105 (the originals)
    rotations: List[int] = field(default_factory=lambda: [0, 90, 180, 270])  # each rotation is a class; [0]: none
    val_alphabets: Optional[int] = None  # lake / minimal*: training alphabets held out for validation (None: 5 / 1)
    split_seed: int = 0  # which alphabets are held out (lake / minimal*)
    augment: str = "none"  # none, or affine: a small random affine per training image
    download: bool = False  # fetch missing zips from the Omniglot repository and check their md5
    cache_dir: Optional[str] = None  # decoded images are cached here; None: $METALEARN_CACHE or ~/.cache/metalearn

    def check(self, prefix: str) -> None:
        one_of(f"{prefix}.split", self.split, OMNIGLOT_SPLITS)
        one_of(f"{prefix}.augment", self.augment, CHARACTER_AUGMENTS)
        if not 8 <= self.image_size <= 105:
            raise ConfigError(
                f"{prefix}.image_size={self.image_size} is invalid: must be between 8 and 105 (28, 84 and 105 "
                "are usual)"
            )
        if (
            not self.rotations
            or len(set(self.rotations)) != len(self.rotations)
            or not set(self.rotations) <= {0, 90, 180, 270}
        ):
            raise ConfigError(
                f"{prefix}.rotations={list(self.rotations)} is invalid: a list of distinct angles from [0, 90, "
                "180, 270], e.g. [0] for none"
            )
        if self.val_alphabets is not None:
            at_least(f"{prefix}.val_alphabets", self.val_alphabets, 1)
            if self.split == "vinyals":
                raise ConfigError(
                    f"{prefix}.val_alphabets={self.val_alphabets} does not apply to {prefix}.split=vinyals, "
                    "whose validation "
                    f"alphabets are fixed; use it with split=lake, minimal1 or minimal2, or remove it"
                )
