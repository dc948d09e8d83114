"""dataset=folder: layouts, seeded class split, channel inference, errors, cache, and a CLI run on 84x84 RGB."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from metalearn.data.folder import load_folder
from metalearn.data.images import decode_image
from metalearn.errors import DataError
from tests.support import run_cli

FORMATS = ("png", "jpg", "bmp", "webp", "gif")


def write_folder(
    root: Path, classes: int = 5, per_class: int = 25, size: int = 20, gray: bool = False, splits: bool = False
) -> None:
    """root/[split/]classNN/imgKK.<ext>, formats cycling through png, jpg, bmp, webp, gif, plus a stray text file."""
    rng = np.random.default_rng(0)
    for c in range(classes):
        split = ("train", "train", "train", "val", "test")[c % 5] if splits else ""
        folder = root / split / f"class{c:02d}"
        folder.mkdir(parents=True)
        for k in range(per_class):
            shape = (size, size + 4) if gray else (size, size + 4, 3)  # not square: resized to a square
            img = Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8))
            img.save(folder / f"img{k:02d}.{FORMATS[k % len(FORMATS)]}")
        (folder / "notes.txt").write_text("not an image")


def test_fraction_split_is_seeded_disjoint_and_reproducible(tmp_path: Path) -> None:
    write_folder(tmp_path / "d", classes=10, per_class=3)
    cache = str(tmp_path / "c")
    a = load_folder(str(tmp_path / "d"), image_size=16, split_fractions=[0.6, 0.2, 0.2], split_seed=1, cache_dir=cache)
    b = load_folder(str(tmp_path / "d"), image_size=16, split_fractions=[0.6, 0.2, 0.2], split_seed=1, cache_dir=cache)
    c = load_folder(str(tmp_path / "d"), image_size=16, split_fractions=[0.6, 0.2, 0.2], split_seed=2, cache_dir=cache)
    names = {s: set(a.split(s).class_names) for s in ("train", "val", "test")}
    assert [len(names[s]) for s in ("train", "val", "test")] == [6, 2, 2]
    assert set.union(*names.values()) == {f"class{c:02d}" for c in range(10)}
    assert not (names["train"] & names["val"] or names["train"] & names["test"] or names["val"] & names["test"])
    for s in ("train", "val", "test"):
        assert a.split(s).class_names == b.split(s).class_names
        assert torch.equal(a.split(s).images, b.split(s).images)
    assert [c.split(s).class_names for s in ("train", "val", "test")] != [
        a.split(s).class_names for s in ("train", "val", "test")
    ]
    assert len(list(Path(cache).iterdir())) == 1  # the split seed does not change what is decoded
    assert a.input_shape == (3, 16, 16) and a.train.class_sizes.tolist() == [3] * 6  # notes.txt skipped


def test_split_subfolders_and_pixels(tmp_path: Path) -> None:
    write_folder(tmp_path / "d", classes=10, per_class=2, splits=True)
    data = load_folder(str(tmp_path / "d"), image_size=20, cache_dir=str(tmp_path / "c"))
    assert data.train.class_names == [f"train/class{c:02d}" for c in (0, 1, 2, 5, 6, 7)]
    assert data.val.class_names == ["val/class03", "val/class08"] and data.test.class_names == [
        "test/class04",
        "test/class09",
    ]
    # each image is the file decoded with Pillow and resized to 20x20 with Lanczos
    with Image.open(tmp_path / "d" / "val" / "class08" / "img01.jpg") as img:
        expected = torch.from_numpy(np.array(img.convert("RGB").resize((20, 20), Image.Resampling.LANCZOS))).permute(
            2, 0, 1
        )
    assert torch.equal(data.val.images[3], expected)


def test_partial_split_folders_are_an_error(tmp_path: Path) -> None:
    write_folder(tmp_path / "d", classes=5, per_class=2, splits=True)
    for cls in (tmp_path / "d" / "val").iterdir():
        for f in cls.iterdir():
            f.unlink()
        cls.rmdir()
    (tmp_path / "d" / "val").rmdir()
    with pytest.raises(DataError, match=r"has train/ and test/ but no .*val: give all of train/, val/ and test/"):
        load_folder(str(tmp_path / "d"), cache_dir=str(tmp_path / "c"))


def test_channels_are_inferred_or_forced(tmp_path: Path) -> None:
    write_folder(tmp_path / "gray", classes=5, per_class=3, gray=True)
    gray = load_folder(
        str(tmp_path / "gray"), image_size=12, split_fractions=[0.6, 0.2, 0.2], cache_dir=str(tmp_path / "c")
    )
    assert gray.input_shape == (1, 12, 12)
    forced = load_folder(
        str(tmp_path / "gray"),
        image_size=12,
        channels="3",
        split_fractions=[0.6, 0.2, 0.2],
        cache_dir=str(tmp_path / "c"),
    )
    assert forced.input_shape == (3, 12, 12)
    assert torch.equal(forced.train.images, gray.train.images.expand(-1, 3, -1, -1))
    # one colour image among grayscale ones: auto gives 3 channels
    Image.fromarray(np.full((8, 8, 3), (255, 0, 0), np.uint8)).save(tmp_path / "gray" / "class00" / "red.png")
    mixed = load_folder(
        str(tmp_path / "gray"), image_size=12, split_fractions=[0.6, 0.2, 0.2], cache_dir=str(tmp_path / "c")
    )
    assert mixed.input_shape == (3, 12, 12)
    one = load_folder(
        str(tmp_path / "gray"),
        image_size=12,
        channels="1",
        split_fractions=[0.6, 0.2, 0.2],
        cache_dir=str(tmp_path / "c"),
    )
    assert one.input_shape == (1, 12, 12)


def test_corrupt_image_is_named_and_nothing_is_cached(tmp_path: Path) -> None:
    write_folder(tmp_path / "d", classes=5, per_class=3)
    bad = tmp_path / "d" / "class03" / "img01.jpg"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated
    cache = tmp_path / "c"
    with pytest.raises(DataError, match=r"cannot read the image .*class03/img01\.jpg.*replace or remove it"):
        load_folder(str(tmp_path / "d"), split_fractions=[0.6, 0.2, 0.2], cache_dir=str(cache))
    assert not cache.exists() or not list(cache.iterdir())
    with pytest.raises(DataError, match="not an image"):
        decode_image(b"plain text", "notes.txt")


def test_missing_root_and_empty_class_and_too_few_classes(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"is not a folder"):
        load_folder(str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"needs dataset\.root=PATH"):
        load_folder(None)
    write_folder(tmp_path / "d", classes=3, per_class=2)
    with pytest.raises(
        DataError, match=r"3 classes cannot be split by dataset\.split_fractions=\[0\.64, 0\.16, 0\.2\]"
    ):
        load_folder(str(tmp_path / "d"), cache_dir=str(tmp_path / "c"))
    (tmp_path / "d" / "empty").mkdir()
    with pytest.raises(DataError, match=r"class folder .*empty holds no images"):
        load_folder(str(tmp_path / "d"), cache_dir=str(tmp_path / "c"))


def test_cache_is_rebuilt_when_a_file_changes(tmp_path: Path) -> None:
    write_folder(tmp_path / "d", classes=5, per_class=2)
    cache = tmp_path / "c"
    kwargs = dict(image_size=8, split_fractions=[0.6, 0.2, 0.2], cache_dir=str(cache))
    before = load_folder(str(tmp_path / "d"), **kwargs)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "d" / "class00" / "img00.png")
    after = load_folder(str(tmp_path / "d"), **kwargs)
    assert len(list(cache.iterdir())) == 2
    index = lambda d: next(s for s in ("train", "val", "test") if "class00" in d.split(s).class_names)  # noqa: E731
    assert after.split(index(after)).images.sum() < before.split(index(before)).images.sum()


def test_cli_conv4_trains_on_84x84_rgb_folder(tmp_path: Path) -> None:
    """model=conv4 takes its input shape (3, 84, 84) from the data: no extra keys."""
    write_folder(tmp_path / "d", classes=10, per_class=4, size=90, splits=True)
    out = tmp_path / "run"
    proc = run_cli(
        "dataset=folder",
        f"dataset.root={tmp_path / 'd'}",
        "dataset.augment=standard",
        "model=conv4",
        "sampler.n_way=2",
        "sampler.k_shot=1",
        "sampler.q_query=2",
        "sampler.val_episodes=2",
        "sampler.test_episodes=4",
        "trainer.iterations=2",
        "trainer.val_interval=2",
        "trainer.progress=false",
        "device=cpu",
        f"hydra.run.dir={out}",
        env={"METALEARN_CACHE": str(tmp_path / "cache")},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"] == "folder" and results["episodes"] == 4 and 0 <= results["mean"] <= 1
    bad = run_cli(
        "dataset=folder", f"dataset.root={tmp_path / 'missing'}", "device=cpu", f"hydra.run.dir={tmp_path / 'run2'}"
    )
    assert bad.returncode == 2 and "Error: dataset.root=" in bad.stderr + bad.stdout and "Traceback" not in bad.stderr


def test_high_bit_depth_and_float_images_are_scaled_not_clipped(tmp_path: Path) -> None:
    ramp16 = (np.arange(64, dtype=np.uint32).reshape(8, 8) * 1000).astype(np.uint16)  # 0 .. 63,000
    Image.fromarray(ramp16).save(tmp_path / "sixteen.png")
    ramp01 = np.arange(64, dtype=np.float32).reshape(8, 8) / 63.0  # 0 .. 1
    Image.fromarray(ramp01, mode="F").save(tmp_path / "float.tif")
    sixteen = decode_image(tmp_path / "sixteen.png", "sixteen.png")
    expected16 = torch.from_numpy(np.round(ramp16 * (255 / 65535)).astype(np.uint8))[None]
    assert torch.equal(sixteen, expected16) and sixteen.max() == 245  # not all 255
    floats = decode_image(tmp_path / "float.tif", "float.tif")
    assert torch.equal(floats, torch.from_numpy(np.round(ramp01.astype(np.float64) * 255).astype(np.uint8))[None])
    assert floats.min() == 0 and floats.max() == 255  # not all 0


def test_float_images_outside_the_usual_ranges_are_refused(tmp_path: Path) -> None:
    Image.fromarray(np.full((8, 8), 1000.0, dtype=np.float32), mode="F").save(tmp_path / "hdr.tif")
    with pytest.raises(DataError, match=r"cannot read the image hdr.tif: its float pixels span \[1000, 1000\]"):
        decode_image(tmp_path / "hdr.tif", "hdr.tif")
