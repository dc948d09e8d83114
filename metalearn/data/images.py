"""Decoding and resizing helpers shared by the image data sets.

Images are decoded once with Pillow (in a thread pool: Pillow releases the GIL while decoding and
resizing), resized to a square with an antialiasing filter, and handed on as uint8 tensors [C, H, W];
after that everything is tensor work. A file Pillow cannot read is a DataError naming the file.
"""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor

from metalearn.errors import DataError

#: file endings read as images (compared case-insensitively)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm", ".pgm"})
#: Pillow modes that hold no colour
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
#: grayscale modes with more than 8 bits a pixel, scaled to 8 bits when decoded
HIGH_DEPTH_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
#: Lanczos: antialiased when shrinking, as in the usual mini-ImageNet preprocessing
RESAMPLE = Image.Resampling.LANCZOS

Source = Union[str, Path, bytes]


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def decode_image(source: Source, name: str, size: Optional[int] = None, mode: Optional[str] = None) -> Tensor:
    """Decode one image file (a path or its bytes) to uint8 [C, H, W].

    mode: "L" (1 channel), "RGB" (3 channels) or None, which keeps grayscale images at 1 channel and
    gives everything else 3. size: resize to size x size (aspect ratio not kept) unless already so.
    `name` is what an error message calls the file.
    """
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            img = ImageOps.exif_transpose(img)  # photos taken sideways come out upright
            img.load()  # decode now, so a truncated file fails here, with its name
            img = _to_8_bit(img, name)
            target = mode or ("L" if img.mode in GRAY_MODES else "RGB")
            if img.mode != target:
                img = img.convert(target)
            if size is not None and img.size != (size, size):
                img = img.resize((size, size), RESAMPLE)
            array = np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(
            f"cannot read the image {name}: {exc}; the file is damaged or not an image: replace or remove it"
        ) from None
    tensor = torch.from_numpy(array.copy())
    return tensor[None] if tensor.dim() == 2 else tensor.permute(2, 0, 1).contiguous()


def _to_8_bit(img: Image.Image, name: str) -> Image.Image:
    """16-bit and 32-bit integer and float grayscale images as 8-bit "L" images, scaled rather than clipped.

    Why: Pillow's convert("L") clips such pixels, so a 16-bit PNG came out all 255 and a float TIFF in [0, 1]
    all 0. Integers are read as 16-bit (0..65535 -> 0..255) unless they all fit in 8 bits; floats in [0, 1]
    are scaled by 255, floats in [0, 255] kept; anything else is refused, naming the file.
    """
    if img.mode not in HIGH_DEPTH_MODES:
        return img
    values = np.asarray(img, dtype=np.float64)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if img.mode == "F":
        if not np.isfinite(values).all() or low < 0 or high > 255:
            raise DataError(
                f"cannot read the image {name}: its float pixels span [{low:g}, {high:g}], neither [0, 1] nor "
                "[0, 255]; save it as an 8-bit image"
            )
        scale = 255.0 if high <= 1.0 else 1.0
    else:
        if low < 0 or high > 65535:
            raise DataError(
                f"cannot read the image {name}: its integer pixels span [{low:g}, {high:g}], beyond 16 bits; "
                "save it as an 8-bit or 16-bit image"
            )
        scale = 1.0 if high <= 255 else 255.0 / 65535.0
    return Image.fromarray(np.round(values * scale).astype(np.uint8), mode="L")


def decode_many(
    sources: Sequence[Source],
    names: Sequence[str],
    size: Optional[int],
    mode: Optional[str] = None,
    workers: Optional[int] = None,
) -> list[Tensor]:
    """decode_image over many files in a thread pool, keeping their order."""
    workers = workers or min(8, os.cpu_count() or 1)

    def one(i: int) -> Tensor:
        return decode_image(sources[i], names[i], size, mode)

    if workers <= 1 or len(sources) < 16:
        return [one(i) for i in range(len(sources))]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, range(len(sources)), chunksize=64))


def to_channels(images: Sequence[Tensor], channels: int) -> list[Tensor]:
    """Bring decoded images to `channels` (1 or 3): gray is repeated to RGB, RGB is averaged to gray
    (ITU-R 601-2 luma)."""
    out = []
    weights = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    for img in images:
        if img.shape[0] == channels:
            out.append(img)
        elif channels == 3:
            out.append(img.expand(3, -1, -1).contiguous())
        else:
            out.append((img.float() * weights).sum(0, keepdim=True).round().clamp(0, 255).to(torch.uint8))
    return out


def resize_batch(images: Tensor, size: int, chunk: int = 1024) -> Tensor:
    """Resize uint8 [N, C, H, W] to [N, C, size, size] (bilinear with antialiasing); a no-op at the same size."""
    if images.shape[-2:] == (size, size):
        return images
    parts = [
        F.interpolate(
            images[i : i + chunk].float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
        .round_()
        .clamp_(0, 255)
        .to(torch.uint8)
        for i in range(0, len(images), chunk)
    ]
    return torch.cat(parts) if parts else images.new_zeros((0, images.shape[1], size, size))


def hwc_to_chw(array: np.ndarray) -> Tensor:
    """uint8 numpy [N, H, W, C] -> torch [N, C, H, W] (contiguous)."""
    return torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2).contiguous()


def file_listing(paths: Sequence[Path], base: Path) -> list[tuple[str, int, int]]:
    """(path relative to base, size, mtime in ns) per file: a cheap cache key for folders of many images."""
    out = []
    for path in paths:
        info = path.stat()
        out.append((path.relative_to(base).as_posix(), info.st_size, info.st_mtime_ns))
    return out
