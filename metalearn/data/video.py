"""The few-shot video benchmarks from the videos their users have on disk, with the published class splits.

Each split file lists one video per line as `CLASS/VIDEO` (Kinetics-100: `air drumming/-VtLx-mcPds_000012_000022`).
A video is found under `root` as a folder of extracted frames (`root/CLASS/VIDEO/img_00001.jpg ...`, any .jpg or
.png names in sorted order) or as a video file (`root/CLASS/VIDEO.mp4`, .webm, .avi or .mkv, decoded with PyAV:
`pip install "metalearn[video]"`), or the same without the class folder (`root/VIDEO/`, `root/VIDEO.webm`, as
Something-Something V2 is distributed). Videos are never downloaded (their licences).

Decoding happens once: `stored_frames` frames at the centres of equal segments of each video, resized (shorter side
to `image_size`, antialiased) and centre-cropped to image_size x image_size, are cached as one uint8 tensor
[N, stored_frames, C, H, W] per split; the sampler then shows `frames` of them per clip (metalearn.data.frames). A
video that cannot be decoded stops the build with an error naming the file, and nothing is cached.

The split lists shipped in metalearn/data/video_splits/ are those distributed with the TRX code (SOURCES.md there):
Kinetics-100 and SSv2-small from Zhu & Yang 2018 (CMN), SSv2-full from Cao et al. 2020 (OTAM), UCF101 and HMDB51
from Zhang et al. 2020 (ARN).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from tqdm import tqdm

from metalearn.cache import cache_file, file_sha256
from metalearn.config.options import VIDEO_BENCHMARKS
from metalearn.data.augment import make_transform
from metalearn.data.class_store import ClassStore, SplitData
from metalearn.data.frames import frame_indices
from metalearn.errors import DataError

SPLITS_DIR = Path(__file__).resolve().parent / "video_splits"
VIDEO_FILES = (".mp4", ".webm", ".avi", ".mkv")
FRAME_FILES = (".jpg", ".jpeg", ".png")
READER_VERSION = 1


def read_split(path: Path) -> list[tuple[str, str]]:
    """(class, video) per non-empty line `CLASS/VIDEO` of a split file, in file order."""
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if "/" not in line:
            raise DataError(f"{path}, line {number}: '{line}' is not CLASS/VIDEO")
        label, video = line.rsplit("/", 1)
        entries.append((label, video))
    return entries


def candidates(root: Path, label: str, video: str) -> list[Path]:
    """Where a video may be, in the order looked: a frame folder or a video file, with or without its class folder."""
    places = []
    for base in (root / label, root):
        places.append(base / video)
        places += [base / f"{video}{ext}" for ext in VIDEO_FILES]
    return places


def locate(root: Path, label: str, video: str) -> Path | None:
    for place in candidates(root, label, video):
        if place.is_dir() if place.suffix not in VIDEO_FILES else place.is_file():
            return place
    return None


def _fit(image: Image.Image, size: int, channels: int) -> np.ndarray:
    """Shorter side to `size` (antialiased), centre crop to size x size: uint8 [C, size, size]."""
    image = image.convert("RGB" if channels == 3 else "L")
    w, h = image.size
    scale = size / min(w, h)
    image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.BILINEAR)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    array = np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def _video_frames(path: Path) -> list:
    """The decoded frames of a video file (PyAV VideoFrames, converted to images only where picked)."""
    try:
        import av
    except ImportError:
        raise DataError(
            f'{path} is a video file; decoding it needs PyAV: pip install "metalearn[video]" (or extract its '
            "frames into a folder of the same name)"
        ) from None
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def decode(path: Path, stored: int, size: int, channels: int = 3) -> Tensor:
    """`stored` frames of the video at `path` (a frame folder or a video file) at the centres of equal segments,
    fitted to size x size: uint8 [stored, C, size, size]. DataError naming the file if it cannot be read."""
    try:
        if path.is_dir():
            every: list = sorted(p for p in path.iterdir() if p.suffix.lower() in FRAME_FILES)
            image = Image.open
            if not every:
                raise DataError(f"the frame folder {path} holds no {'/'.join(FRAME_FILES)} images")
        else:
            every = _video_frames(path)
            image = lambda frame: frame.to_image()
            if not every:
                raise DataError(f"the video {path} has no frames")
        picked = frame_indices(len(every), stored, 1, train=False)[0].tolist()
        return torch.from_numpy(np.stack([_fit(image(every[i]), size, channels) for i in picked]))
    except DataError:
        raise
    except Exception as exc:  # PIL and PyAV raise many kinds; the user needs the file's name
        raise DataError(f"cannot decode {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from None


def _split_files(benchmark: str | None, splits: str | None) -> tuple[str, dict[str, Path]]:
    """The data set's name and its train / val / test split files."""
    folder = Path(splits).expanduser() if splits else SPLITS_DIR / VIDEO_BENCHMARKS[str(benchmark)]
    if not splits and not folder.is_dir():
        raise DataError(
            f"the split lists of dataset={benchmark} are not shipped with this version of metalearn; put them in a "
            "folder as train.txt, val.txt and test.txt (CLASS/VIDEO lines) and use dataset=video "
            "dataset.splits=FOLDER"
        )
    files = {name: folder / f"{name}.txt" for name in ("train", "val", "test")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise DataError(f"dataset.splits={folder} lacks {', '.join(missing)} (one CLASS/VIDEO per line)")
    return (benchmark or folder.name), files


def _check_present(name: str, split: str, entries: Sequence[tuple[str, str]], root: Path) -> list[Path]:
    """Every video's path, or one DataError saying how many are missing, which, and where they were looked for."""
    found = [locate(root, label, video) for label, video in entries]
    missing = [e for e, p in zip(entries, found) if p is None]
    if missing:
        label, video = missing[0]
        looked = ", ".join(str(p) for p in candidates(root, label, video))
        raise DataError(
            f"{len(missing)} of the {len(entries)} videos of {name}'s {split} split are not under {root}: the first, "
            f"'{label}/{video}', was looked for at {looked}; point dataset.root at the folder holding them"
        )
    return [p for p in found if p is not None]


def build_split(
    name: str, split: str, entries: Sequence[tuple[str, str]], root: Path, stored: int, size: int, channels: int
) -> ClassStore:
    """Decode one split's videos into a ClassStore of clips, classes in order of first appearance."""
    paths = _check_present(name, split, entries, root)
    by_class: dict[str, list[Tensor]] = {}
    for (label, _), path in zip(tqdm(entries, desc=f"decoding {name} {split}", unit="video", leave=False), paths):
        by_class.setdefault(label, []).append(decode(path, stored, size, channels))
    return ClassStore.from_classes([torch.stack(c) for c in by_class.values()], list(by_class))


def load_video(
    benchmark: str | None = None,
    root: str | None = None,
    splits: str | None = None,
    frames: int = 8,
    stored_frames: int = 16,
    image_size: int = 112,
    channels: int = 3,
    augment: str = "none",
    augment_crop_scale: Sequence[float] = (0.7, 1.0),
    augment_flip: float = 0.5,
    augment_jitter: float = 0.0,
    cache_dir: str | None = None,
) -> SplitData:
    """A few-shot video data set: a built-in `benchmark`'s split lists, or your own (`splits`, a folder of
    train.txt / val.txt / test.txt), over the videos under `root`; built once and cached."""
    if root is None:
        raise DataError(
            "needs dataset.root=PATH: the folder holding the videos (frame folders or video files; they are never "
            "downloaded)"
        )
    base = Path(root).expanduser()
    if not base.is_dir():
        raise DataError(f"dataset.root={base} is not a folder")
    name, files = _split_files(benchmark, splits)
    settings = dict(
        version=READER_VERSION,
        root=str(base.resolve()),
        lists={k: file_sha256(p) for k, p in files.items()},
        stored_frames=stored_frames,
        image_size=image_size,
        channels=channels,
    )
    stores = {}
    for split, path in files.items():
        entries = read_split(path)
        stores[split] = ClassStore.load_or_build(
            cache_file(cache_dir, f"video-{name}-{split}", settings),
            lambda split=split, entries=entries: build_split(
                name, split, entries, base, stored_frames, image_size, channels
            ),
        )
    transform = make_transform(augment, augment_crop_scale, augment_flip, augment_jitter, frames=frames)
    return SplitData(
        stores["train"], stores["val"], stores["test"], name=name, train_transform=transform, frames=frames
    )
