"""`omniglot`: Lake, Salakhutdinov & Tenenbaum (Science 2015), 1,623 characters of 50 alphabets, 20 drawings each.

Splits (`split`):
- vinyals (Vinyals et al. 2016, used by Prototypical Networks and Torchmeta): 1028 / 172 / 423 characters;
  see VINYALS_VAL and VINYALS_TRAIN_EVALUATION below.
- lake: meta-train on the background set (`val_alphabets` of its alphabets held out for validation,
  chosen by `split_seed`), test on the evaluation set.
- minimal1 / minimal2: meta-train on the 5-alphabet minimal background set small1 / small2 (with
  `val_alphabets` held out), test on the evaluation set.

Preprocessing: the PNGs are black ink on white; we invert them, so ink is bright (255) on a dark
background (0), the polarity of the glyphs data set and of the usual Omniglot tensors. Images are
resized from 105x105 to `image_size` with antialiased bilinear interpolation. Rotations by 90, 180 and
270 degrees make new classes (Santoro et al. 2016; Snell et al. 2017), materialised after the split, so a
character's rotated copies always stay in its split. Each decoded image set is cached as one uint8
tensor file keyed by its source fingerprint and the preprocessing settings.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from metalearn.cache import default_cache_dir, settings_key
from metalearn.data.character_affine import random_affine
from metalearn.data.class_store import ClassStore, SplitData
from metalearn.data.omniglot_sources import FileSource, locate
from metalearn.errors import DataError

DECODER_VERSION = 1
SOURCE_SIZE = 105
SPLITS = ("vinyals", "lake", "minimal1", "minimal2")
ROTATIONS = (0, 90, 180, 270)
SET_LABELS = {
    "images_background": "background",
    "images_evaluation": "evaluation",
    "images_background_small1": "small1",
    "images_background_small2": "small2",
}
VINYALS_VAL = ("Armenian", "Bengali", "Early_Aramaic", "Hebrew", "Mkhedruli_(Georgian)")
VINYALS_TRAIN_EVALUATION = ("Angelic", "Atemayar_Qelisayer", "Atlantean", "Aurek-Besh", "Avesta", "Ge_ez", "Glagolitic")
VINYALS_SHARED = ("Gurmukhi", 41)  # its characters 01-41 are for training, 42-45 for testing
_RESIZE_CHUNK = 1024


# --- decoding -----------------------------------------------------------------------------------
def decode_ink(read: Callable[[str], bytes], names: Sequence[str], where: Callable[[str], str]) -> Tensor:
    """Decode same-sized PNGs to uint8 ink images [N, H, W]: ink 255, background 0 (the PNGs are black on white)."""
    out: Optional[np.ndarray] = None
    for i, name in enumerate(names):
        try:
            with Image.open(io.BytesIO(read(name))) as image:
                pixels = np.asarray(image.convert("L"))
        except DataError:
            raise
        except Exception as exc:  # PIL raises many kinds of errors for damaged files
            raise DataError(
                f"cannot decode the image {where(name)} ({exc}); the file is corrupt: replace it or download "
                "the data again"
            ) from None
        if out is None:
            out = np.empty((len(names), *pixels.shape), dtype=np.uint8)
        if pixels.shape != out.shape[1:]:
            raise DataError(
                f"the image {where(name)} is {pixels.shape[1]}x{pixels.shape[0]}, expected "
                f"{out.shape[2]}x{out.shape[1]} like the others"
            )
        np.subtract(255, pixels, out=out[i])
    if out is None:
        return torch.empty(0, SOURCE_SIZE, SOURCE_SIZE, dtype=torch.uint8)
    return torch.from_numpy(out)


def resize(ink: Tensor, size: int) -> Tensor:
    """uint8 [N, H, W] -> uint8 [N, 1, size, size], antialiased bilinear (chunked to bound memory)."""
    ink = ink[:, None]
    if ink.shape[-1] == size and ink.shape[-2] == size:
        return ink.contiguous()
    chunks = [
        F.interpolate(
            ink[i : i + _RESIZE_CHUNK].float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
        .round_()
        .clamp_(0, 255)
        .to(torch.uint8)
        for i in range(0, len(ink), _RESIZE_CHUNK)
    ]
    return torch.cat(chunks) if chunks else torch.empty(0, 1, size, size, dtype=torch.uint8)


def decode_set(source: FileSource, label: str, image_size: int) -> ClassStore:
    """All characters of one image set; class names `label/Alphabet/characterNN`, images in file-name order."""
    by_class: dict[tuple[str, str], list[str]] = {}
    for name in source.names():
        parts = name.split("/")
        if name.lower().endswith(".png") and len(parts) >= 3 and not parts[-1].startswith("."):
            by_class.setdefault((parts[-3], parts[-2]), []).append(name)
    if not by_class:
        raise DataError(f"{source.location} holds no Omniglot images (<Alphabet>/characterNN/*.png)")
    keys = sorted(by_class)
    names = [n for key in keys for n in sorted(by_class[key])]
    images = resize(decode_ink(source.read, names, source.where), image_size)
    counts = torch.tensor([0] + [len(by_class[key]) for key in keys])
    return ClassStore(images, torch.cumsum(counts, 0), [f"{label}/{a}/{c}" for a, c in keys])


def load_set(source: FileSource, set_name: str, image_size: int, cache_dir: Path) -> ClassStore:
    """Decode one image set, or load it from the cache written by an earlier decode of the same bytes and settings."""
    key = settings_key(dict(version=DECODER_VERSION, source=source.fingerprint(), image_size=image_size, set=set_name))
    path = cache_dir / f"omniglot-{SET_LABELS[set_name]}-{image_size}-{key}.pt"
    return ClassStore.load_or_build(path, lambda: decode_set(source, SET_LABELS[set_name], image_size))


# --- splits -------------------------------------------------------------------------------------
def _alphabet(name: str) -> str:
    return name.split("/")[1]


def _character_number(name: str) -> int:
    digits = "".join(ch for ch in name.split("/")[2] if ch.isdigit())
    return int(digits) if digits else 0


def _vinyals_part(name: str) -> str:
    label, alphabet = name.split("/")[0], _alphabet(name)
    if label == "background":
        return "val" if alphabet in VINYALS_VAL else "train"
    if alphabet in VINYALS_TRAIN_EVALUATION:
        return "train"
    if alphabet == VINYALS_SHARED[0]:
        return "train" if _character_number(name) <= VINYALS_SHARED[1] else "test"
    return "test"


def _held_out(alphabets: list[str], count: int, seed: int, split: str) -> set[str]:
    if not 0 < count < len(alphabets):
        raise DataError(
            f"dataset.val_alphabets={count} is invalid for split={split}: its meta-training set has {len(alphabets)} "
            f"alphabets, so between 1 and {len(alphabets) - 1} can be held out for validation"
        )
    order = torch.randperm(len(alphabets), generator=torch.Generator().manual_seed(seed))
    return {alphabets[i] for i in order[:count].tolist()}


def _concat(stores: list[ClassStore]) -> ClassStore:
    sizes = torch.cat([s.class_sizes for s in stores])
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(sizes, 0)])
    return ClassStore(torch.cat([s.images for s in stores]), offsets, [n for s in stores for n in s.class_names])


def split_classes(
    split: str, sets: dict[str, ClassStore], val_alphabets: Optional[int], split_seed: int
) -> dict[str, ClassStore]:
    """Assign whole characters to train / val / test stores (before any rotation)."""
    if split == "vinyals":
        combined = _concat(list(sets.values()))
        parts = [_vinyals_part(n) for n in combined.class_names]
        return {p: combined.subset([i for i, q in enumerate(parts) if q == p]) for p in ("train", "val", "test")}
    train_set = sets["images_background" if split == "lake" else f"images_background_small{split[-1]}"]
    alphabets = sorted({_alphabet(n) for n in train_set.class_names})
    held = _held_out(
        alphabets, val_alphabets if val_alphabets is not None else (5 if split == "lake" else 1), split_seed, split
    )
    in_val = [_alphabet(n) in held for n in train_set.class_names]
    return {
        "train": train_set.subset([i for i, v in enumerate(in_val) if not v]),
        "val": train_set.subset([i for i, v in enumerate(in_val) if v]),
        "test": sets["images_evaluation"],
    }


def with_rotations(store: ClassStore, rotations: Sequence[int]) -> ClassStore:
    """Each rotation of each class becomes a class of its own (rotations in degrees, counter-clockwise)."""
    if list(rotations) == [0]:
        return store
    rotated = [
        ClassStore(
            torch.rot90(store.images, k=r // 90, dims=(2, 3)),
            store.class_offsets,
            [n if r == 0 else f"{n}/rot{r:03d}" for n in store.class_names],
        )
        for r in rotations
    ]
    return _concat(rotated)


def set_names(split: str) -> list[str]:
    if split in ("vinyals", "lake"):
        return ["images_background", "images_evaluation"]
    return [f"images_background_small{split[-1]}", "images_evaluation"]


def load_omniglot(
    root: Optional[str] = None,
    split: str = "vinyals",
    image_size: int = 28,
    rotations: Sequence[int] = ROTATIONS,
    val_alphabets: Optional[int] = None,
    split_seed: int = 0,
    augment: str = "none",
    download: bool = False,
    cache_dir: Optional[str] = None,
) -> SplitData:
    """Build (or load from the cache) the Omniglot splits; see the module docstring for the options (checked
    by OmniglotConfig, metalearn/config/groups/dataset.py)."""
    cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    data_root = Path(root).expanduser() if root else cache / "omniglot"
    sources = locate(data_root, set_names(split), download)
    sets = {name: load_set(source, name, image_size, cache) for name, source in sources.items()}
    parts = split_classes(split, sets, val_alphabets, split_seed)
    return SplitData(
        train=with_rotations(parts["train"], rotations),
        val=with_rotations(parts["val"], rotations),
        test=with_rotations(parts["test"], rotations),
        name=f"omniglot ({split})",
        train_transform=random_affine if augment == "affine" else None,
    )
