"""One split of a classification data set, held in memory as a single uint8 tensor.

Sampling an episode is tensor indexing into `images`; nothing is decoded per episode.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch import Tensor

from metalearn.errors import DataError


@dataclass
class ClassStore:
    """Images of one split grouped by class, held in memory: an episode is drawn by tensor indexing.

    Args:
        images: uint8 [N, C, H, W] ([N, T, C, H, W] for clips); the images of class c are
            images[class_offsets[c]:class_offsets[c + 1]].
        class_offsets: long [num_classes + 1], starting at 0 and ending at N.
        class_names: num_classes names, for messages and splits.
    """

    images: Tensor
    class_offsets: Tensor
    class_names: list[str]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() not in (4, 5):
            raise DataError(
                "ClassStore images must be uint8 [N, C, H, W] (clips: [N, T, C, H, W]), got "
                f"{self.images.dtype} {tuple(self.images.shape)}"
            )
        offsets = self.class_offsets = self.class_offsets.to(torch.long)
        if offsets.dim() != 1 or len(offsets) != len(self.class_names) + 1:
            raise DataError("ClassStore class_offsets must have one entry per class plus one")
        if offsets[0] != 0 or offsets[-1] != len(self.images) or bool((offsets[1:] < offsets[:-1]).any()):
            raise DataError("ClassStore class_offsets must rise from 0 to the number of images")

    @classmethod
    def from_classes(cls, per_class: Sequence[Tensor], class_names: Sequence[str]) -> "ClassStore":
        """Concatenate per-class uint8 image tensors [n_c, C, H, W] into one store."""
        counts = torch.tensor([0] + [len(x) for x in per_class], dtype=torch.long)
        return cls(torch.cat(list(per_class)), torch.cumsum(counts, 0), list(class_names))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def class_sizes(self) -> Tensor:
        return self.class_offsets[1:] - self.class_offsets[:-1]

    @property
    def image_shape(self) -> tuple[int, ...]:
        """One sample's shape: (C, H, W), or (T, C, H, W) for clips of T stored frames."""
        return tuple(self.images.shape[1:])

    def subset(self, class_indices: Sequence[int]) -> "ClassStore":
        """A new store holding only the given classes, in the given order."""
        per_class = [self.images[self.class_offsets[c] : self.class_offsets[c + 1]] for c in class_indices]
        return ClassStore.from_classes(per_class, [self.class_names[c] for c in class_indices])

    def digest(self) -> str:
        """A checksum of the store's content (images, class offsets and names), kept with its cache file."""
        h = hashlib.blake2b(digest_size=16)
        h.update(self.images.contiguous().numpy().tobytes())
        h.update(self.class_offsets.numpy().astype("<i8").tobytes())
        h.update("\n".join(self.class_names).encode())
        return h.hexdigest()

    def save(self, path: Path) -> None:
        """Write atomically, so an interrupted write never leaves a broken cache file; the content's checksum
        goes with it."""
        from metalearn.files import atomic_torch_save

        blob = {"images": self.images, "class_offsets": self.class_offsets, "class_names": self.class_names}
        atomic_torch_save({**blob, "digest": self.digest()}, path)

    @classmethod
    def load_or_build(cls, path: Path, build: "Callable[[], ClassStore]") -> "ClassStore":
        """Load the cache file at `path`, or build the store and save it there (atomically).

        A damaged cache file, or one whose content no longer matches its checksum, is rebuilt, never used.
        """
        if path.exists():
            try:
                return cls.load(path)
            except DataError as exc:
                print(f"{exc}; rebuilding it", file=sys.stderr, flush=True)
        store = build()
        store.save(path)
        return store

    @classmethod
    def load(cls, path: Path) -> "ClassStore":
        """Read a cache file written by `save`; DataError if it is unreadable or its content fails its checksum."""
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            store = cls(blob["images"], blob["class_offsets"], list(blob["class_names"]))
        except Exception as exc:  # any corruption: the caller rebuilds
            raise DataError(f"cached data file {path} is unreadable ({type(exc).__name__})") from exc
        if "digest" not in blob:
            raise DataError(f"cached data file {path} was written without a checksum")
        if blob["digest"] != store.digest():
            raise DataError(f"cached data file {path} does not match its checksum")
        return store


@dataclass
class SplitData:
    """What a classification data set provides: one ClassStore per split.

    Video data sets hold clips [N, F, C, H, W] and say how many frames the model sees (`frames`, T): the sampler
    picks T of the F stored frames (metalearn.data.frames), and the model's input is [T, C, H, W].
    """

    train: ClassStore
    val: ClassStore
    test: ClassStore
    name: str

    task: str = "classification"
    #: per-image training augmentation on float batches [..., C, H, W] in [0, 1]; never used in evaluation
    train_transform: Optional[Callable[[Tensor, torch.Generator], Tensor]] = None
    #: clips: the frames the model sees per clip (None: images)
    frames: Optional[int] = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        shape = self.train.image_shape
        return shape if self.frames is None else (self.frames, *shape[1:])

    def split(self, name: str) -> ClassStore:
        return {"train": self.train, "val": self.val, "test": self.test}[name]

    @classmethod
    def consecutive(cls, store: ClassStore, train: int, val: int, name: str, **extra: Any) -> "SplitData":
        """The store's first `train` classes for meta-training, the next `val` for validation, the rest for test."""
        order = range(store.num_classes)
        return cls(
            train=store.subset(order[:train]),
            val=store.subset(order[train : train + val]),
            test=store.subset(order[train + val :]),
            name=name,
            **extra,
        )
