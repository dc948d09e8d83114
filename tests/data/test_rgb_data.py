"""mini-ImageNet, CIFAR-FS and FC100 readers on tiny fixtures written in the published formats."""

from __future__ import annotations

import csv
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from metalearn.config.groups.image_data import CifarFSConfig, FolderConfig, MiniImageNetConfig
from metalearn.data import cifar_fs
from metalearn.data.cifar_fs import (
    CIFAR_FS_SPLITS,
    FC100_SPLITS,
    FC100_SUPERCLASSES,
    SUPERCLASSES,
    load_cifar_fs,
    load_fc100,
)
from metalearn.data.mini_imagenet import load_mini_imagenet
from metalearn.errors import ConfigError, DataError

MINI_SPLITS = {"train": ["n01", "n02", "n03"], "val": ["n04", "n05"], "test": ["n06", "n07"]}
PER_CLASS = 4


def _mini_images(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 84, 84, 3), dtype=np.uint8)


def write_mini_imagenet(root: Path, pickles: bool = True, csvs: bool = True) -> dict[str, np.ndarray]:
    """The same images as the pickle caches and as images/ + split CSVs; classes listed in reverse name order."""
    root.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for i, (split, classes) in enumerate(MINI_SPLITS.items()):
        classes = classes[::-1]  # the readers must sort classes by name
        data = _mini_images(i, PER_CLASS * len(classes))
        arrays[split] = data
        names = [f"{c}{k:08d}.jpg" for c in classes for k in range(PER_CLASS)]
        if pickles:
            class_dict = {c: list(range(j * PER_CLASS, (j + 1) * PER_CLASS)) for j, c in enumerate(classes)}
            with open(root / f"mini-imagenet-cache-{split}.pkl", "wb") as handle:
                pickle.dump({"image_data": data, "class_dict": class_dict}, handle, protocol=4)
        if csvs:
            (root / "images").mkdir(exist_ok=True)
            with open(root / f"{split}.csv", "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["filename", "label"])
                for name, img in zip(names, data):
                    # Lossless bytes under the published .jpg names: Pillow reads the content, not the name.
                    Image.fromarray(img).save(root / "images" / name, format="PNG")
                    writer.writerow([name, name[:3]])
    return arrays


def test_mini_imagenet_pickle_and_csv_give_identical_tensors(tmp_path: Path) -> None:
    arrays = write_mini_imagenet(tmp_path / "mini")
    from_pickle = load_mini_imagenet(str(tmp_path / "mini"), source="pickle", cache_dir=str(tmp_path / "c1"))
    from_csv = load_mini_imagenet(str(tmp_path / "mini"), source="csv", cache_dir=str(tmp_path / "c2"))
    for split, classes in MINI_SPLITS.items():
        a, b = from_pickle.split(split), from_csv.split(split)
        assert a.class_names == b.class_names == sorted(classes)
        assert a.images.shape == (len(classes) * PER_CLASS, 3, 84, 84) and a.images.dtype == torch.uint8
        assert torch.equal(a.images, b.images)
        assert torch.equal(a.class_offsets, b.class_offsets)
    # class n03 was written first in the train pickle: rows 0..3, HWC -> CHW
    expected = torch.from_numpy(arrays["train"][:PER_CLASS]).permute(0, 3, 1, 2)
    assert torch.equal(from_pickle.train.images[2 * PER_CLASS :], expected)
    assert from_pickle.input_shape == (3, 84, 84)


def test_mini_imagenet_cache_is_reused(tmp_path: Path) -> None:
    write_mini_imagenet(tmp_path / "mini", csvs=False)
    cache = tmp_path / "cache"
    first = load_mini_imagenet(str(tmp_path / "mini"), cache_dir=str(cache))
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 3 and all(f.startswith("mini_imagenet-") for f in files)
    second = load_mini_imagenet(str(tmp_path / "mini"), cache_dir=str(cache))
    assert sorted(p.name for p in cache.iterdir()) == files
    assert torch.equal(first.test.images, second.test.images)
    smaller = load_mini_imagenet(str(tmp_path / "mini"), image_size=42, cache_dir=str(cache))
    assert smaller.input_shape == (3, 42, 42) and len(list(cache.iterdir())) == 6


def test_mini_imagenet_missing_files_name_paths_and_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"mini-imagenet-cache-train\.pkl.*dataset\.root="):
        load_mini_imagenet(str(tmp_path))
    with pytest.raises(DataError, match="dataset.root=PATH"):
        load_mini_imagenet(None)
    write_mini_imagenet(tmp_path / "mini", pickles=False)
    os.remove(tmp_path / "mini" / "images" / "n0600000001.jpg")
    with pytest.raises(DataError, match=r"missing from .*images.*n0600000001\.jpg"):
        load_mini_imagenet(str(tmp_path / "mini"), cache_dir=str(tmp_path / "c"))


def test_mini_imagenet_wrong_pickle_says_what_was_expected(tmp_path: Path) -> None:
    write_mini_imagenet(tmp_path, csvs=False)
    bad = tmp_path / "mini-imagenet-cache-val.pkl"
    with open(bad, "wb") as handle:
        pickle.dump({"images": np.zeros((2, 84, 84, 3), np.uint8), "labels": [0, 1]}, handle)
    with pytest.raises(
        DataError, match=r"mini-imagenet-cache-val\.pkl is not a mini-ImageNet cache: expected .*'image_data'"
    ):
        load_mini_imagenet(str(tmp_path), cache_dir=str(tmp_path / "c"))
    with open(bad, "wb") as handle:
        pickle.dump({"image_data": np.zeros((2, 84, 84), np.float32), "class_dict": {"a": [0, 1]}}, handle)
    with pytest.raises(DataError, match=r"'image_data' is float32 \(2, 84, 84\); expected"):
        load_mini_imagenet(str(tmp_path), cache_dir=str(tmp_path / "c"))


class _Exploit:
    def __reduce__(self):  # noqa: ANN204 - what a malicious pickle does
        return (os.system, ("echo unsafe",))


def test_mini_imagenet_pickle_cannot_run_code(tmp_path: Path) -> None:
    write_mini_imagenet(tmp_path, csvs=False)
    with open(tmp_path / "mini-imagenet-cache-test.pkl", "wb") as handle:
        pickle.dump({"image_data": _Exploit(), "class_dict": {}}, handle)
    with pytest.raises(DataError, match=r"mini-imagenet-cache-test\.pkl: it asks to load .*system"):
        load_mini_imagenet(str(tmp_path), cache_dir=str(tmp_path / "c"))


def test_truncated_pickle_leaves_no_cache_file(tmp_path: Path) -> None:
    write_mini_imagenet(tmp_path / "mini", csvs=False)
    path = tmp_path / "mini" / "mini-imagenet-cache-test.pkl"
    path.write_bytes(path.read_bytes()[:5000])
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"mini-imagenet-cache-test\.pkl.*truncated"):
        load_mini_imagenet(str(tmp_path / "mini"), cache_dir=str(cache))
    assert sorted(p.name.split("-")[1] for p in cache.iterdir()) == ["train", "val"]  # no test file, no temporary
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]


# --- CIFAR-FS / FC100 -----------------------------------------------------------------------------
ALL_CLASSES = sorted(name for names in SUPERCLASSES.values() for name in names)
ALL_SUPERS = sorted(SUPERCLASSES)


def write_cifar100(root: Path, per_class: tuple[int, int] = (2, 1)) -> np.ndarray:
    """torchvision's cifar-100-python/{train,test,meta}, Python-2-style bytes keys; returns image[class, k]
    [3, 32, 32]."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    n = sum(per_class)
    images = rng.integers(0, 256, size=(100, n, 3, 32, 32), dtype=np.uint8)
    coarse_of = {c: ALL_SUPERS.index(s) for s, names in SUPERCLASSES.items() for c in names}
    start = 0
    for name, count in zip(("train", "test"), per_class):
        order = rng.permutation(100 * count)  # shuffled like the real files
        labels = np.repeat(np.arange(100), count)[order]
        within = np.tile(np.arange(start, start + count), 100)[order]
        data = images[labels, within].reshape(-1, 3072)
        blob = {
            b"filenames": [b"x.png"] * len(labels),
            b"batch_label": b"training batch 1 of 1",
            b"data": data,
            b"fine_labels": labels.tolist(),
            b"coarse_labels": [coarse_of[ALL_CLASSES[k]] for k in labels],
        }
        with open(folder / name, "wb") as handle:
            pickle.dump(blob, handle, protocol=2)
        start += count
    meta = {
        b"fine_label_names": [c.encode() for c in ALL_CLASSES],
        b"coarse_label_names": [s.encode() for s in ALL_SUPERS],
    }
    with open(folder / "meta", "wb") as handle:
        pickle.dump(meta, handle, protocol=2)
    return images


def test_split_lists_have_published_sizes_and_are_disjoint() -> None:
    assert sum(len(v) for v in SUPERCLASSES.values()) == 100 and all(len(v) == 5 for v in SUPERCLASSES.values())
    for splits, sizes in ((CIFAR_FS_SPLITS, (64, 16, 20)), (FC100_SPLITS, (60, 20, 20))):
        assert tuple(len(splits[s]) for s in ("train", "val", "test")) == sizes
        union = set(splits["train"]) | set(splits["val"]) | set(splits["test"])
        assert len(union) == 100 and union == set(ALL_CLASSES)
    assert tuple(len(FC100_SUPERCLASSES[s]) for s in ("train", "val", "test")) == (12, 4, 4)
    assert set().union(*FC100_SUPERCLASSES.values()) == set(SUPERCLASSES)


def test_cifar_fs_and_fc100_from_cifar100_files(tmp_path: Path) -> None:
    images = write_cifar100(tmp_path / "data")
    cache = str(tmp_path / "cache")
    fs = load_cifar_fs(str(tmp_path / "data"), cache_dir=cache)
    fc = load_fc100(str(tmp_path / "data"), cache_dir=cache)
    assert len(list(Path(cache).iterdir())) == 1  # one decoded CIFAR-100, two class splits
    for data, splits in ((fs, CIFAR_FS_SPLITS), (fc, FC100_SPLITS)):
        assert data.input_shape == (3, 32, 32)
        for split, names in splits.items():
            store = data.split(split)
            assert store.class_names == names and store.class_sizes.tolist() == [3] * len(names)
    # the pooled images of a class: its 2 train-file images, then its test-file image, in file order
    k = ALL_CLASSES.index("whale")
    whale = fs.test.images[fs.test.class_offsets[0] : fs.test.class_offsets[1]]
    assert torch.equal(whale, torch.from_numpy(images[k]))
    assert fc.test.class_names[:5] == SUPERCLASSES["aquatic_mammals"]


def test_cifar_missing_and_damaged_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"cifar-100-python/\{train,test,meta\}.*dataset\.download=true"):
        load_cifar_fs(str(tmp_path), cache_dir=str(tmp_path / "c"))
    write_cifar100(tmp_path / "data")
    meta = tmp_path / "data" / "cifar-100-python" / "meta"
    with open(meta, "wb") as handle:
        pickle.dump({b"fine_label_names": [b"a"]}, handle)
    with pytest.raises(DataError, match=r"meta is not a CIFAR-100 python file: it has no 'coarse_label_names'"):
        load_fc100(str(tmp_path / "data"), cache_dir=str(tmp_path / "c"))
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").iterdir())


def test_cifar_download_unpacks_verified_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """dataset.download=true goes through the checksummed download; here from a local archive (file:// URL)."""
    import hashlib

    write_cifar100(tmp_path / "src")
    archive = tmp_path / "cifar-100-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-100-python", arcname="cifar-100-python")
    monkeypatch.setattr(cifar_fs, "CIFAR100_URL", archive.as_uri())
    monkeypatch.setattr(cifar_fs, "CIFAR100_MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    data = load_cifar_fs(str(tmp_path / "dest"), download=True, cache_dir=str(tmp_path / "c"))
    assert data.train.num_classes == 64 and (tmp_path / "dest" / "cifar-100-python" / "meta").is_file()
    assert not [p.name for p in (tmp_path / "dest").iterdir() if p.name.startswith(".cifar-100-unpack-")]
    # an archive already present with the right md5 is unpacked without fetching (the URL now points nowhere),
    # and a half-unpacked folder left by an earlier interrupted run is replaced, not trusted
    (tmp_path / "dest" / "cifar-100-python" / "test").unlink()
    monkeypatch.setattr(cifar_fs, "CIFAR100_URL", (tmp_path / "missing.tar.gz").as_uri())
    again = load_cifar_fs(str(tmp_path / "dest"), download=True, cache_dir=str(tmp_path / "c"))
    assert again.train.num_classes == 64 and (tmp_path / "dest" / "cifar-100-python" / "test").is_file()
    monkeypatch.setattr(cifar_fs, "CIFAR100_URL", archive.as_uri())
    monkeypatch.setattr(cifar_fs, "CIFAR100_MD5", "0" * 32)
    with pytest.raises(DataError, match="md5"):
        load_cifar_fs(str(tmp_path / "dest2"), download=True, cache_dir=str(tmp_path / "c"))


def test_image_data_schemas_reject_bad_values() -> None:
    with pytest.raises(ConfigError, match=r"dataset\.augment='crop' is invalid: must be one of none, standard"):
        MiniImageNetConfig(augment="crop").check("dataset")
    with pytest.raises(ConfigError, match=r"dataset\.augment_crop_scale=\[0\.0, 1\.0\] is invalid"):
        CifarFSConfig(augment_crop_scale=[0.0, 1.0]).check("dataset")
    with pytest.raises(ConfigError, match=r"dataset\.split_fractions=\[0\.5, 0\.5\] is invalid"):
        FolderConfig(split_fractions=[0.5, 0.5]).check("dataset")
    with pytest.raises(ConfigError, match=r"dataset\.channels='2' is invalid"):
        FolderConfig(channels="2").check("dataset")
    FolderConfig(channels="3").check("dataset")
