"""The video readers on data written in the published layouts: which frames are decoded, how they are fitted, the
cache, missing and corrupt videos, the shipped split lists, and clip augmentation."""

from __future__ import annotations

import pytest
import torch

from metalearn.config.options import VIDEO_BENCHMARKS
from metalearn.data import video
from metalearn.data.augment import make_transform
from metalearn.data.video import SPLITS_DIR, load_video, read_split
from metalearn.errors import DataError
from tests.video.fixtures import level, video_dataset


def _grey_levels(clips: torch.Tensor) -> list[list[int]]:
    """The mean grey level of each frame of each clip [N, T, C, H, W]."""
    return clips.float().mean(dim=(-3, -2, -1)).round().long().tolist()


def test_frame_folders_decode_the_segment_centres_fitted_to_the_image_size(tmp_path):
    splits = video_dataset(tmp_path, kind="frames", frames=12)
    data = load_video(
        root=str(tmp_path / "videos"),
        splits=str(splits),
        frames=4,
        stored_frames=6,
        image_size=8,
        cache_dir=str(tmp_path / "cache"),
    )
    assert data.name == "splits" and data.frames == 4 and data.input_shape == (4, 3, 8, 8)
    assert data.train.images.shape == (12, 6, 3, 8, 8) and data.train.class_names[0] == "air drumming"
    assert data.test.class_names == ["blasting sand", "busking"]
    # 12 frames into 6 segments: centres floor((k + 1/2) * 2) = 1, 3, 5, 7, 9, 11
    expected = [level(f) for f in (1, 3, 5, 7, 9, 11)]
    for clip in _grey_levels(data.val.images):
        assert all(abs(a - b) <= 2 for a, b in zip(clip, expected)), clip


@pytest.mark.parametrize("kind", ["mp4", "flat_webm"])
def test_video_files_with_or_without_class_folders(tmp_path, kind):
    pytest.importorskip("av")
    splits = video_dataset(tmp_path, videos_per_class=2, kind=kind, frames=10)
    data = load_video(
        root=str(tmp_path / "videos"),
        splits=str(splits),
        frames=5,
        stored_frames=5,
        image_size=16,
        cache_dir=str(tmp_path / "cache"),
    )
    assert data.train.images.shape == (6, 5, 3, 16, 16)
    expected = [level(f) for f in (1, 3, 5, 7, 9)]  # 10 frames, 5 segments of 2: centres 1, 3, 5, 7, 9
    for clip in _grey_levels(data.test.images):
        assert all(abs(a - b) <= 4 for a, b in zip(clip, expected)), clip  # lossy codecs


def test_the_cache_is_used_the_second_time(tmp_path, monkeypatch):
    splits = video_dataset(tmp_path, videos_per_class=2)
    kwargs = dict(root=str(tmp_path / "videos"), splits=str(splits), image_size=8, cache_dir=str(tmp_path / "cache"))
    first = load_video(**kwargs)
    assert len(list((tmp_path / "cache").glob("video-splits-*.pt"))) == 3
    monkeypatch.setattr(video, "decode", lambda *a, **k: pytest.fail("decoded again"))
    again = load_video(**kwargs)
    assert torch.equal(first.train.images, again.train.images)


def test_a_missing_video_says_where_it_looked_and_caches_nothing(tmp_path):
    splits = video_dataset(tmp_path, videos_per_class=2)
    with (splits / "test.txt").open("a") as f:
        f.write("busking/-nowhere\n")
    with pytest.raises(DataError) as error:
        load_video(root=str(tmp_path / "videos"), splits=str(splits), image_size=8, cache_dir=str(tmp_path / "cache"))
    message = str(error.value)
    assert "1 of the 5 videos of splits's test split are not under" in message and "'busking/-nowhere'" in message
    assert str(tmp_path / "videos" / "busking" / "-nowhere.mp4") in message and "\n" not in message
    assert not list((tmp_path / "cache").glob("video-splits-test-*.pt"))


def test_a_corrupt_video_names_the_file_and_caches_nothing(tmp_path):
    pytest.importorskip("av")
    splits = video_dataset(tmp_path, videos_per_class=2, kind="mp4", frames=4)
    bad = tmp_path / "videos" / "busking" / "-bus01_000012_000022.mp4"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(DataError, match=f"cannot decode {bad}"):
        load_video(root=str(tmp_path / "videos"), splits=str(splits), image_size=8, cache_dir=str(tmp_path / "cache"))
    assert not list((tmp_path / "cache").glob("video-splits-test-*.pt"))


def test_no_root_or_a_missing_root_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="needs dataset.root=PATH"):
        load_video(benchmark="kinetics100")
    with pytest.raises(DataError, match="is not a folder"):
        load_video(benchmark="kinetics100", root=str(tmp_path / "nonesuch"))


@pytest.mark.parametrize(
    "benchmark, classes, videos",  # videos: per class, exactly or (fewest, most)
    [
        ("kinetics100", (64, 12, 24), 100),
        ("ssv2_small", (64, 12, 24), 100),
        ("ucf101", (70, 10, 21), (100, 167)),
        ("hmdb51", (31, 10, 10), (102, 548)),
        ("ssv2_full", (64, 12, 24), (1, 10_000)),
    ],
)
def test_the_shipped_split_lists(benchmark, classes, videos):
    folder = SPLITS_DIR / VIDEO_BENCHMARKS[benchmark]
    if not folder.is_dir():  # a benchmark whose lists are not shipped says so
        with pytest.raises(DataError, match=f"the split lists of dataset={benchmark} are not shipped"):
            load_video(benchmark=benchmark, root=str(SPLITS_DIR))
        return
    seen = []
    for split, count in zip(("train", "val", "test"), classes):
        entries = read_split(folder / f"{split}.txt")
        labels = {label for label, _ in entries}
        assert len(labels) == count, split
        assert len(set(entries)) == len(entries)
        per_class = [sum(1 for label, _ in entries if label == c) for c in labels]
        if isinstance(videos, int):  # CMN's splits: 100 videos of each class
            assert per_class == [videos] * count
        else:  # every clip of each class (ARN's UCF101 and HMDB51 splits, OTAM's SSv2): within the data set's range
            assert videos[0] <= min(per_class) and max(per_class) <= videos[1]
        seen.append(labels)
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])  # disjoint classes


def test_clip_augmentation_is_the_same_for_every_frame_of_a_clip():
    frame = torch.rand(3, 12, 12)
    clips = frame.expand(4, 5, 3, 12, 12).clone()  # 4 clips of 5 identical frames
    augment = make_transform("standard", (0.5, 1.0), 0.5, 0.4, frames=5)
    out = augment(clips, torch.Generator().manual_seed(0))
    assert torch.allclose(out, out[:, :1].expand_as(out))  # frames of a clip alike
    assert not torch.allclose(out[0], out[1])  # clips differ
    image = make_transform("standard", (0.5, 1.0), 0.5, 0.4)
    as_images = image(clips.reshape(20, 3, 12, 12), torch.Generator().manual_seed(0))
    assert not torch.allclose(as_images[0], as_images[1])  # images, unlike frames, are each their own draw
