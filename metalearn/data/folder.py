"""`dataset=folder`: the user's own images, one sub-folder per class.

Two layouts:
- `ROOT/train/<class>/*`, `ROOT/val/<class>/*`, `ROOT/test/<class>/*`: the splits as given;
- `ROOT/<class>/*`: a class-level split, shuffled by `split_seed` and cut by `split_fractions`
  (meta-train / validation / test), so the three splits never share a class.
Files ending in .jpg, .jpeg, .png, .bmp, .webp, .gif, .tif(f), .ppm or .pgm are read (other and hidden
files are skipped), resized to `image_size` x `image_size` (Lanczos, antialiased; the aspect ratio is
not kept). `channels: auto` gives 1 channel when every image is grayscale and 3 otherwise.
The decoded images are cached, keyed by each file's path, size and modification time and the settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import torch

from metalearn.cache import cache_file
from metalearn.data.augment import make_transform
from metalearn.data.class_store import ClassStore, SplitData
from metalearn.data.images import decode_many, file_listing, is_image_file, to_channels
from metalearn.errors import DataError

SPLITS = ("train", "val", "test")
CHANNELS = ("auto", "1", "3")
BUILD_VERSION = 1


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def discover(root: Path) -> tuple[bool, list[Path]]:
    """(has train/val/test sub-folders, class folders relative to root in a fixed order)."""
    if not root.is_dir():
        raise DataError(f"dataset.root={root} is not a folder; point it at a folder with one sub-folder per class")
    present = [s for s in SPLITS if (root / s).is_dir()]
    if present and len(present) < 3:
        missing = " or ".join(str(root / s) for s in SPLITS if s not in present)
        raise DataError(
            f"{root} has {' and '.join(s + '/' for s in present)} but no {missing}: give all of train/, val/ and test/ "
            "(each with one sub-folder per class), or none of them to split the classes by dataset.split_fractions"
        )
    if present:
        classes = [d.relative_to(root) for s in SPLITS for d in _class_dirs(root / s)]
        for split in SPLITS:
            if not _class_dirs(root / split):
                raise DataError(
                    f"{root / split} has no class sub-folders; put each class's images in {root / split}/CLASS/"
                )
    else:
        classes = [d.relative_to(root) for d in _class_dirs(root)]
        if not classes:
            raise DataError(
                f"{root} has no class sub-folders; put each class's images in {root}/CLASS/ (one folder per class)"
            )
    return bool(present), classes


def _images_of(root: Path, classes: Sequence[Path]) -> list[list[Path]]:
    out = []
    for cls in classes:
        files = sorted(p for p in (root / cls).iterdir() if is_image_file(p))
        if not files:
            raise DataError(
                f"the class folder {root / cls} holds no images (.jpg, .jpeg, .png, .bmp, .webp, .gif, ...)"
            )
        out.append(files)
    return out


def build_store(
    root: Path, classes: Sequence[Path], files: Sequence[Sequence[Path]], image_size: int, channels: str
) -> ClassStore:
    """Decode every image, bring them all to one channel count, one store with a class per folder."""
    flat = [p for group in files for p in group]
    mode = {"1": "L", "3": "RGB"}.get(channels)
    images = decode_many(flat, [str(p) for p in flat], image_size, mode)
    count = 1 if all(img.shape[0] == 1 for img in images) else 3
    images = to_channels(images, count)
    per_class = list(torch.split(torch.stack(images), [len(g) for g in files]))
    return ClassStore.from_classes(per_class, [c.as_posix() for c in classes])


def split_counts(n: int, fractions: Sequence[float]) -> list[int]:
    """Classes per split: rounded train and val shares, the rest to test; each at least 1."""
    n_train, n_val = round(fractions[0] * n), round(fractions[1] * n)
    counts = [n_train, n_val, n - n_train - n_val]
    if min(counts) < 1:
        raise DataError(
            f"{n} classes cannot be split by dataset.split_fractions={list(fractions)} into non-empty "
            f"train / val / test splits (that gives {counts}); add classes or change the fractions"
        )
    return counts


def load_folder(
    root: Optional[str] = None,
    image_size: int = 84,
    channels: str = "auto",
    split_fractions: Sequence[float] = (0.64, 0.16, 0.2),
    split_seed: int = 0,
    augment: str = "none",
    augment_crop_scale: Sequence[float] = (0.5, 1.0),
    augment_flip: float = 0.5,
    augment_jitter: float = 0.4,
    cache_dir: Optional[str] = None,
) -> SplitData:
    """Load (or build and cache) a folder of class sub-folders as train / val / test splits."""
    transform = make_transform(augment, augment_crop_scale, augment_flip, augment_jitter)
    if not root:
        raise DataError("dataset=folder needs dataset.root=PATH: a folder with one sub-folder of images per class")
    base = Path(root).expanduser()
    given_splits, classes = discover(base)
    files = _images_of(base, classes)
    channels = str(channels)
    settings = dict(
        version=BUILD_VERSION,
        files=file_listing([p for g in files for p in g], base),
        image_size=image_size,
        channels=channels,
    )
    store = ClassStore.load_or_build(
        cache_file(cache_dir, "folder", settings), lambda: build_store(base, classes, files, image_size, channels)
    )
    if given_splits:
        parts = {s: [i for i, c in enumerate(classes) if c.parts[0] == s] for s in SPLITS}
    else:
        order = torch.randperm(len(classes), generator=torch.Generator().manual_seed(split_seed)).tolist()
        n_train, n_val, _ = split_counts(len(classes), split_fractions)
        cuts = {"train": order[:n_train], "val": order[n_train : n_train + n_val], "test": order[n_train + n_val :]}
        parts = {s: sorted(idx) for s, idx in cuts.items()}
    return SplitData(*(store.subset(parts[s]) for s in SPLITS), name=f"folder {base.name}", train_transform=transform)
