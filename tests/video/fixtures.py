"""Tiny video data sets written in the published layouts: frame folders (CLASS/VIDEO/img_00001.jpg) and video files
(CLASS/VIDEO.mp4, or VIDEO.webm without a class folder as Something-Something V2 ships), with split lists of
CLASS/VIDEO lines. Frame f of video v of class c is filled with one grey level, so tests can read back which frames
were decoded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = {
    "train": ["air drumming", "arm wrestling", "beatboxing"],
    "val": ["baking cookies", "crossing river"],
    "test": ["blasting sand", "busking"],
}


def level(frame: int) -> int:
    """The grey level of a frame: 10 per frame index, so the frames of one video are told apart after decoding."""
    return 10 * frame + 5


def write_frames(folder: Path, count: int, size: tuple[int, int] = (20, 16)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(count):
        Image.new("RGB", size, (level(f),) * 3).save(folder / f"img_{f + 1:05d}.jpg", quality=100)


def write_video(path: Path, count: int, size: tuple[int, int] = (32, 24), codec: str = "libx264") -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for f in range(count):
            frame = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), level(f), np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def video_dataset(root: Path, videos_per_class: int = 4, frames: int = 12, kind: str = "frames") -> Path:
    """Write videos under root/videos and split lists under root/splits; returns the splits folder.
    kind: "frames" (frame folders), "mp4" (CLASS/VIDEO.mp4) or "flat_webm" (VIDEO.webm, no class folder)."""
    splits = root / "splits"
    splits.mkdir(parents=True, exist_ok=True)
    for split, classes in CLASSES.items():
        lines = []
        for label in classes:
            for v in range(videos_per_class):
                video = f"-{label[:3]}{v:02d}_000012_000022"
                lines.append(f"{label}/{video}")
                if kind == "frames":
                    write_frames(root / "videos" / label / video, frames)
                elif kind == "mp4":
                    write_video(root / "videos" / label / f"{video}.mp4", frames)
                else:
                    write_video(root / "videos" / f"{video}.webm", frames, codec="libvpx-vp9")
        (splits / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return splits
