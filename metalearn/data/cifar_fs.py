"""CIFAR-FS and FC100: few-shot splits of CIFAR-100 (Krizhevsky 2009), 32x32 RGB, 600 images per class.

- CIFAR-FS (Bertinetto et al., "Meta-learning with differentiable closed-form solvers", ICLR 2019):
  a random class split 64 / 16 / 20. The lists below are that split as published with the paper's code
  (github.com/bertinetto/r2d2) and shipped by Torchmeta (torchmeta/datasets/assets/cifar100/cifar-fs).
- FC100 (Oreshkin et al., "TADAM: Task dependent adaptive metric for improved few-shot learning",
  NeurIPS 2018): split by the 20 superclasses, 12 / 4 / 4 (60 / 20 / 20 classes), so that test classes
  share no superclass with training classes; the superclass lists as in Torchmeta and learn2learn.

Both are built from torchvision's CIFAR-100 python files (`cifar-100-python/{train,test,meta}`): the
50,000 training and 10,000 test images are pooled per fine class. The files are pickles; they are read
with a restricted unpickler that admits numpy arrays and plain Python values only.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from metalearn.cache import cache_file, default_cache_dir, file_sha256
from metalearn.data.augment import make_transform
from metalearn.data.class_store import ClassStore, SplitData
from metalearn.data.images import resize_batch
from metalearn.data.safe_pickle import safe_load
from metalearn.errors import DataError

CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
CIFAR100_FILES = ("train", "test", "meta")
BUILD_VERSION = 1

# CIFAR-100's 20 superclasses and their 5 classes each (Krizhevsky 2009), with the files' label names.
SUPERCLASSES: dict[str, list[str]] = {
    "aquatic_mammals": ["beaver", "dolphin", "otter", "seal", "whale"],
    "fish": ["aquarium_fish", "flatfish", "ray", "shark", "trout"],
    "flowers": ["orchid", "poppy", "rose", "sunflower", "tulip"],
    "food_containers": ["bottle", "bowl", "can", "cup", "plate"],
    "fruit_and_vegetables": ["apple", "mushroom", "orange", "pear", "sweet_pepper"],
    "household_electrical_devices": ["clock", "keyboard", "lamp", "telephone", "television"],
    "household_furniture": ["bed", "chair", "couch", "table", "wardrobe"],
    "insects": ["bee", "beetle", "butterfly", "caterpillar", "cockroach"],
    "large_carnivores": ["bear", "leopard", "lion", "tiger", "wolf"],
    "large_man-made_outdoor_things": ["bridge", "castle", "house", "road", "skyscraper"],
    "large_natural_outdoor_scenes": ["cloud", "forest", "mountain", "plain", "sea"],
    "large_omnivores_and_herbivores": ["camel", "cattle", "chimpanzee", "elephant", "kangaroo"],
    "medium_mammals": ["fox", "porcupine", "possum", "raccoon", "skunk"],
    "non-insect_invertebrates": ["crab", "lobster", "snail", "spider", "worm"],
    "people": ["baby", "boy", "girl", "man", "woman"],
    "reptiles": ["crocodile", "dinosaur", "lizard", "snake", "turtle"],
    "small_mammals": ["hamster", "mouse", "rabbit", "shrew", "squirrel"],
    "trees": ["maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"],
    "vehicles_1": ["bicycle", "bus", "motorcycle", "pickup_truck", "train"],
    "vehicles_2": ["lawn_mower", "rocket", "streetcar", "tank", "tractor"],
}

# CIFAR-FS (Bertinetto et al. 2019), from the r2d2 split files as shipped by Torchmeta.
CIFAR_FS_SPLITS: dict[str, list[str]] = {
    "train": [
        "dolphin",
        "seal",
        "aquarium_fish",
        "ray",
        "trout",
        "orchid",
        "sunflower",
        "tulip",
        "bottle",
        "bowl",
        "can",
        "cup",
        "plate",
        "apple",
        "mushroom",
        "orange",
        "pear",
        "clock",
        "keyboard",
        "chair",
        "couch",
        "bee",
        "caterpillar",
        "cockroach",
        "bear",
        "lion",
        "tiger",
        "wolf",
        "bridge",
        "castle",
        "house",
        "road",
        "skyscraper",
        "cloud",
        "forest",
        "mountain",
        "elephant",
        "kangaroo",
        "porcupine",
        "possum",
        "raccoon",
        "skunk",
        "lobster",
        "spider",
        "boy",
        "girl",
        "dinosaur",
        "lizard",
        "snake",
        "turtle",
        "hamster",
        "mouse",
        "rabbit",
        "shrew",
        "squirrel",
        "oak_tree",
        "palm_tree",
        "pine_tree",
        "willow_tree",
        "bus",
        "train",
        "lawn_mower",
        "streetcar",
        "tank",
    ],
    "val": [
        "beaver",
        "otter",
        "flatfish",
        "shark",
        "lamp",
        "television",
        "beetle",
        "butterfly",
        "sea",
        "camel",
        "cattle",
        "crab",
        "crocodile",
        "maple_tree",
        "motorcycle",
        "tractor",
    ],
    "test": [
        "whale",
        "poppy",
        "rose",
        "sweet_pepper",
        "telephone",
        "bed",
        "table",
        "wardrobe",
        "leopard",
        "plain",
        "chimpanzee",
        "fox",
        "snail",
        "worm",
        "baby",
        "man",
        "woman",
        "bicycle",
        "pickup_truck",
        "rocket",
    ],
}

# FC100 (Oreshkin et al. 2018): superclasses per split, as in Torchmeta's and learn2learn's FC100.
FC100_SUPERCLASSES: dict[str, list[str]] = {
    "train": [
        "fish",
        "flowers",
        "food_containers",
        "fruit_and_vegetables",
        "household_electrical_devices",
        "household_furniture",
        "large_man-made_outdoor_things",
        "large_natural_outdoor_scenes",
        "reptiles",
        "trees",
        "vehicles_1",
        "vehicles_2",
    ],
    "val": ["large_carnivores", "large_omnivores_and_herbivores", "non-insect_invertebrates", "small_mammals"],
    "test": ["aquatic_mammals", "insects", "medium_mammals", "people"],
}
FC100_SPLITS: dict[str, list[str]] = {
    split: [name for superclass in supers for name in SUPERCLASSES[superclass]]
    for split, supers in FC100_SUPERCLASSES.items()
}


def _str_keys(blob: Any, path: Path) -> dict[str, Any]:
    """The CIFAR pickles were written by Python 2: keys may come back as bytes or str."""
    if not isinstance(blob, dict):
        raise DataError(f"{path} is not a CIFAR-100 python file: expected a dict, found {type(blob).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in blob.items()}


def _field(blob: dict[str, Any], key: str, path: Path) -> Any:
    if key not in blob:
        raise DataError(
            f"{path} is not a CIFAR-100 python file: it has no {key!r} entry (found {', '.join(sorted(blob))}); "
            "use the files of cifar-100-python.tar.gz (or set dataset.download=true)"
        )
    return blob[key]


def find_cifar100(root: Path) -> Path:
    """The folder holding train/test/meta: ROOT/cifar-100-python (torchvision's layout) or ROOT itself."""
    candidates = [root / "cifar-100-python", root]
    for folder in candidates:
        if all((folder / name).is_file() for name in CIFAR100_FILES):
            return folder
    looked = " or ".join(str(c / "{train,test,meta}") for c in candidates)
    raise DataError(
        f"CIFAR-100 not found: looked for {looked}. Set dataset.root=PATH to the folder that holds "
        "cifar-100-python/ (torchvision's layout), or add dataset.download=true to fetch it there"
    )


def download_cifar100(root: Path) -> Path:
    """Fetch and unpack cifar-100-python.tar.gz into ROOT (md5-checked); return the unpacked folder.

    An archive already there with the right md5 is not fetched again. Unpacking goes to a temporary
    folder beside the target and is renamed into place, so an interrupted unpack never leaves a
    truncated file that a later run would take for the data.
    """
    from metalearn.cache import file_md5
    from metalearn.data.download import download_file

    archive = root / "cifar-100-python.tar.gz"
    if not (archive.is_file() and file_md5(archive) == CIFAR100_MD5):
        archive = download_file(CIFAR100_URL, archive, md5=CIFAR100_MD5)
    staging = Path(tempfile.mkdtemp(prefix=".cifar-100-unpack-", dir=root))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(staging, filter="data")
        unpacked = staging / "cifar-100-python"
        if not unpacked.is_dir():
            raise DataError(
                f"{archive} does not hold a cifar-100-python/ folder; delete it and run again with "
                "dataset.download=true"
            )
        target = root / "cifar-100-python"
        if target.exists():
            shutil.rmtree(target)  # an incomplete earlier copy: find_cifar100 did not accept it
        os.replace(unpacked, target)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"cannot unpack {archive}: {exc}; delete it and run again with dataset.download=true") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return find_cifar100(root)


def read_cifar100(folder: Path) -> tuple[list[torch.Tensor], list[str], list[str]]:
    """Per fine class: uint8 images [n, 3, 32, 32] (train then test files); fine names; each class's superclass."""
    meta = _str_keys(safe_load(folder / "meta"), folder / "meta")
    fine_names = [_text(n) for n in _field(meta, "fine_label_names", folder / "meta")]
    coarse_names = [_text(n) for n in _field(meta, "coarse_label_names", folder / "meta")]
    images, fine, coarse = [], [], []
    for name in ("train", "test"):
        path = folder / name
        blob = _str_keys(safe_load(path), path)
        data = np.asarray(_field(blob, "data", path))
        labels = np.asarray(_field(blob, "fine_labels", path), dtype=np.int64)
        supers = np.asarray(_field(blob, "coarse_labels", path), dtype=np.int64)
        if (
            data.dtype != np.uint8
            or data.ndim != 2
            or data.shape[1] != 3 * 32 * 32
            or not len(data) == len(labels) == len(supers)
        ):
            raise DataError(
                f"{path} has 'data' of {data.dtype} {data.shape} with {len(labels)} labels: expected uint8 "
                "[N, 3072] (32x32 RGB, channel-major) and one fine and one coarse label per row"
            )
        if len(labels) and (
            labels.min() < 0 or labels.max() >= len(fine_names) or supers.min() < 0 or supers.max() >= len(coarse_names)
        ):
            raise DataError(
                f"{path} has labels outside the {len(fine_names)} fine / {len(coarse_names)} coarse names of "
                f"{folder / 'meta'}"
            )
        images.append(data.reshape(-1, 3, 32, 32))
        fine.append(labels)
        coarse.append(supers)
    all_images, all_fine, all_coarse = np.concatenate(images), np.concatenate(fine), np.concatenate(coarse)
    order = np.argsort(all_fine, kind="stable")
    tensor = torch.from_numpy(np.ascontiguousarray(all_images[order]))
    counts = np.bincount(all_fine, minlength=len(fine_names))
    per_class = list(torch.split(tensor, counts.tolist()))
    superclass_of = []
    for c in range(len(fine_names)):
        found = set(all_coarse[all_fine == c].tolist())
        superclass_of.append(coarse_names[found.pop()] if len(found) == 1 else "")
    return per_class, fine_names, superclass_of


def _text(value: Any) -> str:
    return value.decode("latin1") if isinstance(value, bytes) else str(value)


def _check_superclasses(fine_names: Sequence[str], superclass_of: Sequence[str], folder: Path) -> None:
    """The files must agree with the published class lists that the splits are written in."""
    expected = {name: sup for sup, names in SUPERCLASSES.items() for name in names}
    missing = sorted(set(expected) - set(fine_names))
    if missing:
        raise DataError(f"{folder} is not CIFAR-100: its meta file lacks the classes {', '.join(missing[:5])}")
    for name, sup in zip(fine_names, superclass_of):
        if name in expected and sup != expected[name]:
            raise DataError(f"{folder}: class {name} is in superclass {sup or 'several'}, expected {expected[name]}")


def _split_loader(name: str, splits: dict[str, list[str]], doc: str) -> Callable[..., SplitData]:
    """The `_target_` of one benchmark: CIFAR-100 decoded once (cached), then cut into `splits`."""

    def load(
        root: Optional[str] = None,
        download: bool = False,
        image_size: int = 32,
        augment: str = "none",
        augment_crop_scale: Sequence[float] = (0.5, 1.0),
        augment_flip: float = 0.5,
        augment_jitter: float = 0.4,
        cache_dir: Optional[str] = None,
    ) -> SplitData:
        transform = make_transform(augment, augment_crop_scale, augment_flip, augment_jitter)
        base = Path(root).expanduser() if root else default_cache_dir() / "cifar100"
        try:
            folder = find_cifar100(base)
        except DataError:
            if not download:
                raise
            folder = download_cifar100(base)
        sources = {f: file_sha256(folder / f) for f in CIFAR100_FILES}
        settings = dict(version=BUILD_VERSION, sources=sources, image_size=image_size)

        def build() -> ClassStore:
            per_class, fine_names, superclass_of = read_cifar100(folder)
            _check_superclasses(fine_names, superclass_of, folder)
            return ClassStore.from_classes([resize_batch(x, image_size) for x in per_class], fine_names)

        store = ClassStore.load_or_build(cache_file(cache_dir, "cifar100", settings), build)
        index = {n: i for i, n in enumerate(store.class_names)}
        parts = {split: store.subset([index[n] for n in names]) for split, names in splits.items()}
        return SplitData(parts["train"], parts["val"], parts["test"], name=name, train_transform=transform)

    load.__name__ = load.__qualname__ = f"load_{name}"
    load.__doc__ = doc
    return load


load_cifar_fs = _split_loader(
    "cifar_fs", CIFAR_FS_SPLITS, "CIFAR-FS: 64 / 16 / 20 CIFAR-100 classes (Bertinetto et al. 2019)."
)
load_fc100 = _split_loader(
    "fc100", FC100_SPLITS, "FC100: 12 / 4 / 4 CIFAR-100 superclasses, 60 / 20 / 20 classes (Oreshkin et al. 2018)."
)
