"""Omniglot: splits against the published lists, sources (zip / folder / torchvision layout / download),
the decode cache, errors for damaged or missing data, rotations, augmentation and an end-to-end CLI run."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
import torch

from metalearn.config.groups.dataset import OmniglotConfig
from metalearn.data import omniglot, omniglot_sources
from metalearn.data.character_affine import random_affine
from metalearn.data.omniglot import load_omniglot, load_set
from metalearn.data.omniglot_sources import FolderSource, ZipSource, locate
from metalearn.errors import ConfigError, DataError
from tests.support import OMNIGLOT_DIR, TINY, run_cli

SMALL1 = "images_background_small1"


@pytest.fixture(scope="module")
def vinyals() -> omniglot.SplitData:
    """The full data set decoded once for the module (and cached in METALEARN_CACHE for later loads)."""
    if not (OMNIGLOT_DIR / "images_background.zip").is_file():
        pytest.skip(f"real Omniglot not found at {OMNIGLOT_DIR}")
    return load_omniglot(root=str(OMNIGLOT_DIR))


def _base(name: str) -> str:
    return name.split("/rot")[0]


def _small_zip(omniglot_dir: Path, dest: Path, characters: int = 3) -> Path:
    """A zip with the first few characters of small1, laid out like the published zip."""
    with (
        zipfile.ZipFile(omniglot_dir / f"{SMALL1}.zip") as src,
        zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as out,
    ):
        chars = sorted({"/".join(n.split("/")[:3]) for n in src.namelist() if n.endswith(".png")})[:characters]
        for name in sorted(n for n in src.namelist() if n.endswith(".png") and "/".join(n.split("/")[:3]) in chars):
            out.writestr(name, src.read(name))
    return dest


def _cache_files(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


# --- splits, preprocessing, rotations -----------------------------------------------------------
def test_vinyals_split_equals_published_lists(vinyals: omniglot.SplitData, omniglot_dir: Path) -> None:
    for split, count in (("train", 1028), ("val", 172), ("test", 423)):
        listed = json.loads((omniglot_dir / "splits" / "vinyals" / f"{split}.json").read_text())
        expected = sorted(
            f"{s}/{a}/{c}" for s, alphabets in listed.items() for a, chars in alphabets.items() for c in chars
        )
        store = vinyals.split(split)
        unrotated = sorted(n for n in store.class_names if "/rot" not in n)
        assert unrotated == expected and len(unrotated) == count
        # rotations are new classes of the same split: 4 per character, never in another split
        assert store.num_classes == 4 * count
        assert sorted({_base(n) for n in store.class_names}) == expected
        assert bool((store.class_sizes == 20).all())


def test_images_are_bright_ink_on_dark_and_rotations_are_rotated_copies(vinyals: omniglot.SplitData) -> None:
    store = vinyals.train
    assert store.images.dtype == torch.uint8 and store.image_shape == (1, 28, 28)
    assert store.images.float().mean() < 40 and int(store.images.max()) == 255  # mostly dark background
    names = store.class_names
    c, r = names.index("background/Greek/character01"), names.index("background/Greek/character01/rot090")
    first = store.images[store.class_offsets[c] : store.class_offsets[c + 1]]
    rotated = store.images[store.class_offsets[r] : store.class_offsets[r + 1]]
    assert torch.equal(rotated, torch.rot90(first, 1, dims=(2, 3)))


def test_other_splits(vinyals: omniglot.SplitData) -> None:
    lake = load_omniglot(root=str(OMNIGLOT_DIR), split="lake", rotations=[0])  # decoded sets come from the cache
    assert (lake.train.num_classes + lake.val.num_classes, lake.test.num_classes) == (964, 659)
    assert {n.split("/")[1] for n in lake.val.class_names}.isdisjoint({n.split("/")[1] for n in lake.train.class_names})
    assert len({n.split("/")[1] for n in lake.val.class_names}) == 5
    minimal = load_omniglot(root=str(OMNIGLOT_DIR), split="minimal1", rotations=[0])
    assert minimal.train.num_classes + minimal.val.num_classes == 136 and minimal.test.num_classes == 659
    assert all(n.startswith("small1/") for n in minimal.train.class_names + minimal.val.class_names)


# --- sources and the cache ----------------------------------------------------------------------
def test_zip_folder_and_torchvision_layout_give_identical_tensors(omniglot_dir: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(omniglot_dir / f"{SMALL1}.zip") as archive:
        archive.extractall(tmp_path / "extracted")
    zipped = omniglot.decode_set(ZipSource(omniglot_dir / f"{SMALL1}.zip"), "small1", 28)
    folder = omniglot.decode_set(FolderSource(tmp_path / "extracted" / SMALL1), "small1", 28)
    assert zipped.num_classes == 136 and zipped.class_names == folder.class_names
    assert torch.equal(zipped.images, folder.images) and torch.equal(zipped.class_offsets, folder.class_offsets)
    # torchvision's layout: ROOT/omniglot-py/<set>/...
    (tmp_path / "tv" / "omniglot-py").mkdir(parents=True)
    (tmp_path / "extracted" / SMALL1).rename(tmp_path / "tv" / "omniglot-py" / SMALL1)
    found = locate(tmp_path / "tv", [SMALL1], download=False)[SMALL1]
    assert isinstance(found, FolderSource) and found.location == tmp_path / "tv" / "omniglot-py" / SMALL1


def test_cache_is_reused_and_rebuilt_when_a_setting_changes(
    omniglot_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, cache = ZipSource(_small_zip(omniglot_dir, tmp_path / f"{SMALL1}.zip")), tmp_path / "cache"
    first = load_set(source, SMALL1, 28, cache)
    assert len(_cache_files(cache)) == 1

    def no_decode(*args: object) -> None:
        raise AssertionError("decoded again although the cache is valid")

    monkeypatch.setattr(omniglot, "decode_set", no_decode)
    again = load_set(source, SMALL1, 28, cache)
    assert torch.equal(first.images, again.images) and first.class_names == again.class_names
    monkeypatch.undo()
    bigger = load_set(source, SMALL1, 84, cache)  # a new setting: a new cache file
    assert bigger.image_shape == (1, 84, 84) and len(_cache_files(cache)) == 2


# --- damaged and missing data -------------------------------------------------------------------
def test_corrupt_png_in_a_zip_names_the_member_and_leaves_no_cache(omniglot_dir: Path, tmp_path: Path) -> None:
    good = _small_zip(omniglot_dir, tmp_path / "good.zip")
    bad = tmp_path / f"{SMALL1}.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as out:
        names = sorted(src.namelist())
        for name in names:
            out.writestr(name, b"not a png at all" if name == names[5] else src.read(name))
    with pytest.raises(DataError, match=f"{bad}:{names[5]}"):
        load_set(ZipSource(bad), SMALL1, 28, tmp_path / "cache")
    assert _cache_files(tmp_path / "cache") == []


def test_damaged_zip_bytes_and_truncated_zip_name_the_file(omniglot_dir: Path, tmp_path: Path) -> None:
    good = _small_zip(omniglot_dir, tmp_path / "good.zip")
    with zipfile.ZipFile(good) as archive:
        info = archive.infolist()[3]
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    damaged = bytearray(good.read_bytes())
    damaged[start + 10 : start + 30] = bytes(20)  # inside member 3's compressed data: CRC or inflate error
    (tmp_path / "damaged.zip").write_bytes(bytes(damaged))
    with pytest.raises(DataError, match=f"damaged.zip:{info.filename}"):
        load_set(ZipSource(tmp_path / "damaged.zip"), SMALL1, 28, tmp_path / "cache")
    (tmp_path / "truncated.zip").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DataError, match="truncated.zip is not a readable zip"):
        ZipSource(tmp_path / "truncated.zip")
    assert _cache_files(tmp_path / "cache") == []


def test_download_checks_md5_and_keeps_nothing_on_mismatch(
    omniglot_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = tmp_path / "server"
    server.mkdir()
    archive = _small_zip(omniglot_dir, server / f"{SMALL1}.zip")
    monkeypatch.setattr(omniglot_sources, "URL_PREFIX", server.as_uri())
    monkeypatch.setitem(omniglot_sources.MD5, SMALL1, "0" * 32)
    root = tmp_path / "root"
    with pytest.raises(DataError, match=f"{SMALL1}.zip failed its md5 check"):
        locate(root, [SMALL1], download=True)
    assert not (root / f"{SMALL1}.zip").exists() and _cache_files(root) == []
    monkeypatch.setitem(omniglot_sources.MD5, SMALL1, hashlib.md5(archive.read_bytes()).hexdigest())
    fetched = locate(root, [SMALL1], download=True)[SMALL1]
    assert fetched.location == root / f"{SMALL1}.zip" and fetched.location.read_bytes() == archive.read_bytes()


def test_missing_data_names_every_place_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_omniglot(root=str(tmp_path))
    first, *looked = str(caught.value).splitlines()
    # every candidate lies in one of the folders listed
    folders = {
        str(place.parent)
        for name in ("images_background", "images_evaluation")
        for place in omniglot_sources.candidates(tmp_path, name)
    }
    assert {line.strip() for line in looked} == folders
    assert "set dataset.root to the folder" in first and "dataset.download=true" in first


def test_config_rejects_impossible_values() -> None:
    for bad in (
        dict(split="bogus"),
        dict(image_size=200),
        dict(rotations=[45]),
        dict(augment="flip"),
        dict(val_alphabets=0),
        dict(val_alphabets=3),
    ):  # with the default split=vinyals
        with pytest.raises(ConfigError, match=f"dataset.{next(iter(bad))}="):
            OmniglotConfig(**bad).check("dataset")  # type: ignore[arg-type]


# --- augmentation and the CLI -------------------------------------------------------------------
def test_affine_augmentation_is_seeded_small_and_per_image() -> None:
    x = torch.zeros(2, 5, 1, 28, 28)
    x[..., 10:18, 12:16] = 1.0
    a = random_affine(x, torch.Generator().manual_seed(0))
    b = random_affine(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.equal(a[0, 0], a[0, 1])  # each image its own transform
    assert (a.sum(dim=(-1, -2, -3)) / x.sum(dim=(-1, -2, -3))).sub(1).abs().max() < 0.35  # ink mostly kept


def test_cli_trains_on_the_minimal_set(omniglot_dir: Path, tmp_path: Path) -> None:
    fast = [f for f in TINY if not f.startswith("dataset.")]
    out = run_cli(
        *fast,
        "dataset=omniglot",
        f"dataset.root={omniglot_dir}",
        "dataset.split=minimal1",
        "dataset.augment=affine",
        "trainer.iterations=2",
        "sampler.test_episodes=20",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert out.returncode == 0, out.stderr
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["dataset"] == "omniglot" and results["episodes"] == 20
    bad = run_cli(
        "dataset=omniglot", f"dataset.root={tmp_path / 'nowhere'}", "device=cpu", f"hydra.run.dir={tmp_path / 'bad'}"
    )
    # one line that says what is missing and how to fix it, then the folders looked in
    first, *looked = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and first.startswith("Error: Omniglot not found: no images_background or ")
    assert "dataset.download=true" in first and first.endswith("Looked in:")
    assert [line.strip() for line in looked] == [str(tmp_path / "nowhere"), str(tmp_path / "nowhere" / "omniglot-py")]


def test_a_zip_member_past_the_size_cap_is_refused_before_it_is_inflated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small zip can hold a member that inflates to gigabytes: the declared size is checked before reading,
    and the read itself stops at the cap (here lowered to 1 KiB so the test stays small)."""
    monkeypatch.setattr(omniglot_sources, "MAX_MEMBER_BYTES", 1024)
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("images_background/Alphabet/character01/0001_01.png", b"\0" * 4096)
        archive.writestr("small.png", b"\0" * 100)
    source = ZipSource(path)
    with pytest.raises(
        DataError, match=r"bomb.zip:images_background/.*declares 4,096 bytes, more than the 1,024 bytes"
    ):
        source.read("images_background/Alphabet/character01/0001_01.png")
    assert source.read("small.png") == b"\0" * 100


def test_a_root_that_is_a_file_is_named_without_download_advice(tmp_path: Path) -> None:
    root = tmp_path / "omniglot.zip"
    root.write_bytes(b"not a folder")
    with pytest.raises(DataError) as caught:
        load_omniglot(root=str(root))
    message = str(caught.value)
    assert message == (
        f"dataset.root={root} is a file, not a folder: give the folder that holds Omniglot's zips "
        "(images_background.zip, images_evaluation.zip) or their extracted folders"
    )
    assert "download" not in message and "\n" not in message
