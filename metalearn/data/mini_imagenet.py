"""mini-ImageNet (Vinyals et al. 2016) with the class split of Ravi & Larochelle (ICLR 2017).

100 ImageNet classes of 600 images, 84x84 RGB: 64 classes for meta-training, 16 for validation, 20 for
testing. Two published forms are read:

- `pickle`: the caches `mini-imagenet-cache-{train,val,test}.pkl`, each a dict with `image_data`
  (uint8 [N, 84, 84, 3]) and `class_dict` (class name -> list of row indices). They are unpickled with
  a restricted unpickler that admits numpy arrays and plain values only.
- `csv`: the images in `images/` and Ravi & Larochelle's split files `train.csv`, `val.csv`,
  `test.csv` with the header `filename,label`; images are resized to `image_size` (Lanczos).

Classes are ordered by name, images within a class in the order the source lists them, so both
forms of the same images give identical tensors.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from metalearn.cache import cache_file, file_sha256
from metalearn.data.augment import make_transform
from metalearn.data.class_store import ClassStore, SplitData
from metalearn.data.images import decode_many, file_listing, hwc_to_chw, resize_batch
from metalearn.data.safe_pickle import safe_load
from metalearn.errors import DataError

SPLITS = ("train", "val", "test")
SOURCES = ("auto", "pickle", "csv")
BUILD_VERSION = 1


def pickle_path(root: Path, split: str) -> Path:
    return root / f"mini-imagenet-cache-{split}.pkl"


def _has_pickles(root: Path) -> bool:
    return all(pickle_path(root, s).is_file() for s in SPLITS)


def _has_csv(root: Path) -> bool:
    return (root / "images").is_dir() and all((root / f"{s}.csv").is_file() for s in SPLITS)


def _missing_message(root: Path, source: str) -> str:
    pickles = ", ".join(pickle_path(root, s).name for s in SPLITS)
    csvs = f"{root / 'images'}/ with {', '.join(f'{s}.csv' for s in SPLITS)}"
    wanted = {"pickle": f"the pickles {pickles}", "csv": f"the image folder {csvs}"}
    looked = wanted[source] if source in wanted else f"the pickles {pickles} in {root}, or {wanted['csv']}"
    return (
        f"mini-ImageNet not found: looked for {looked}. Set dataset.root=PATH to the folder that holds them "
        "(mini-ImageNet is not downloaded automatically: its images come under the ImageNet terms of use)"
    )


def resolve_source(root: Path, source: str) -> str:
    """`auto` prefers the pickles, then the CSV layout; an explicit source must be present."""
    present = {"pickle": _has_pickles(root), "csv": _has_csv(root)}
    if source == "auto":
        source = "pickle" if present["pickle"] else "csv" if present["csv"] else ""
    if not source or not present[source]:
        raise DataError(_missing_message(root, source or "auto"))
    return source


def read_pickle_split(path: Path) -> ClassStore:
    """One `mini-imagenet-cache-SPLIT.pkl` as a ClassStore (classes by name, images [N, 3, 84, 84])."""
    blob: Any = safe_load(path)
    expected = "a dict with 'image_data' (uint8 [N, 84, 84, 3]) and 'class_dict' (class name -> list of row indices)"
    if not isinstance(blob, dict) or "image_data" not in blob or "class_dict" not in blob:
        found = ", ".join(map(repr, blob)) if isinstance(blob, dict) else type(blob).__name__
        raise DataError(f"{path} is not a mini-ImageNet cache: expected {expected}, found {found}")
    data, classes = blob["image_data"], blob["class_dict"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 4 or data.shape[-1] != 3:
        shape = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: 'image_data' is {shape}; expected {expected}")
    if not isinstance(classes, dict) or not classes:
        raise DataError(f"{path}: 'class_dict' is empty or not a dict; expected {expected}")
    images = hwc_to_chw(data)
    per_class, names = [], sorted(classes, key=str)
    for name in names:
        rows = np.asarray(classes[name], dtype=np.int64).reshape(-1)
        if len(rows) == 0 or rows.min() < 0 or rows.max() >= len(data):
            raise DataError(f"{path}: class {name!r} lists rows outside 0..{len(data) - 1} of 'image_data' (or none)")
        per_class.append(images[torch.from_numpy(rows)])
    return ClassStore.from_classes(per_class, [str(n) for n in names])


def read_csv(path: Path) -> dict[str, list[str]]:
    """A split file `filename,label` -> label -> filenames, in file order."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if not rows or [c.strip() for c in rows[0]] != ["filename", "label"]:
        raise DataError(f"{path} must start with the header 'filename,label' (Ravi & Larochelle's split files)")
    classes: dict[str, list[str]] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 2:
            raise DataError(f"{path}, line {line}: expected 'filename,label', found {','.join(row)!r}")
        classes.setdefault(row[1].strip(), []).append(row[0].strip())
    if not classes:
        raise DataError(f"{path} lists no images")
    return classes


def _csv_files(root: Path) -> dict[str, dict[str, list[Path]]]:
    out = {}
    for split in SPLITS:
        classes = read_csv(root / f"{split}.csv")
        files = {label: [root / "images" / f for f in names] for label, names in classes.items()}
        missing = [p for paths in files.values() for p in paths if not p.is_file()]
        if missing:
            raise DataError(
                f"{len(missing)} images listed in {root / f'{split}.csv'} are missing from {root / 'images'}, "
                f"for example {missing[0]}; copy them there, or point dataset.root at the complete folder"
            )
        out[split] = files
    return out


def read_csv_split(files: dict[str, list[Path]], image_size: int) -> ClassStore:
    names = sorted(files)
    paths = [p for n in names for p in files[n]]
    images = decode_many(paths, [str(p) for p in paths], image_size, mode="RGB")
    counts = [len(files[n]) for n in names]
    per_class = list(torch.split(torch.stack(images), counts))
    return ClassStore.from_classes(per_class, names)


def load_mini_imagenet(
    root: Optional[str] = None,
    source: str = "auto",
    image_size: int = 84,
    augment: str = "none",
    augment_crop_scale: Sequence[float] = (0.5, 1.0),
    augment_flip: float = 0.5,
    augment_jitter: float = 0.4,
    cache_dir: Optional[str] = None,
) -> SplitData:
    """Load (or build and cache) mini-ImageNet's train / val / test splits from `root`."""
    transform = make_transform(augment, augment_crop_scale, augment_flip, augment_jitter)
    if not root:
        raise DataError(
            "dataset=mini_imagenet needs dataset.root=PATH: the folder with mini-imagenet-cache-{train,val,test}.pkl "
            "or with images/ and train.csv, val.csv, test.csv"
        )
    base = Path(root).expanduser()
    kind = resolve_source(base, source)
    stores = {}
    if kind == "pickle":
        for split in SPLITS:
            path = pickle_path(base, split)
            settings = dict(version=BUILD_VERSION, source="pickle", sha256=file_sha256(path), image_size=image_size)
            stores[split] = ClassStore.load_or_build(
                cache_file(cache_dir, f"mini_imagenet-{split}", settings),
                lambda path=path: _resized(read_pickle_split(path), image_size),
            )
    else:
        files = _csv_files(base)
        for split in SPLITS:
            listing = file_listing([p for n in sorted(files[split]) for p in files[split][n]], base)
            settings = dict(
                version=BUILD_VERSION,
                source="csv",
                csv=file_sha256(base / f"{split}.csv"),
                files=listing,
                image_size=image_size,
            )
            stores[split] = ClassStore.load_or_build(
                cache_file(cache_dir, f"mini_imagenet-{split}", settings),
                lambda f=files[split]: read_csv_split(f, image_size),
            )
    return SplitData(stores["train"], stores["val"], stores["test"], name="mini_imagenet", train_transform=transform)


def _resized(store: ClassStore, image_size: int) -> ClassStore:
    return ClassStore(resize_batch(store.images, image_size), store.class_offsets, store.class_names)
