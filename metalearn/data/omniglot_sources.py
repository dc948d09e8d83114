"""Where Omniglot's image sets are read from: a zip, an extracted folder, torchvision's layout, or a download.

Omniglot (Lake, Salakhutdinov & Tenenbaum, Science 2015; github.com/brendenlake/omniglot) is published
as zips of `<set>/<Alphabet>/characterNN/NNNN_DD.png`. A `FileSource` gives zip members and folder
files one interface (relative names, bytes, a fingerprint for the cache key), so a zip and its
extracted folder decode to identical tensors. The download URLs and md5s are the ones torchvision uses
(torchvision/datasets/omniglot.py); the minimal sets sit beside them in the same repository.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from pathlib import Path
from typing import Optional

from metalearn.cache import file_sha256
from metalearn.data.download import download_file
from metalearn.errors import DataError

URL_PREFIX = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python"
MD5 = {
    "images_background": "68d2efa1b9178cc56df9314c21c6e718",
    "images_evaluation": "6b91aef0f799c5bb55b94e3f2daec811",
    "images_background_small1": "e704a628b5459e08445c13499850abc4",
    "images_background_small2": "b75a71a51d3b13f821f212756fe481fd",
}
TORCHVISION_FOLDER = "omniglot-py"


class FileSource:
    """Read-only files addressed by '/'-separated names relative to the source's top."""

    location: Path

    def names(self) -> list[str]:
        raise NotImplementedError

    def read(self, name: str) -> bytes:
        raise NotImplementedError

    def where(self, name: str) -> str:
        """How to name one file in an error message."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """Changes whenever the content may have changed (cache key)."""
        raise NotImplementedError


MAX_MEMBER_BYTES = 64 << 20  # far above any image or label file of the data sets read from zips


def _too_large(where: str, what: str) -> str:
    return (
        f"{where} {what}, more than the {MAX_MEMBER_BYTES:,} bytes any image or label file may take; the zip is not "
        "one of the data set's files: delete it and download it again"
    )


class ZipSource(FileSource):
    """Members of a zip file, read without extracting; CRC errors and truncation become DataErrors."""

    def __init__(self, path: Path) -> None:
        self.location = Path(path)
        try:
            self._zip = zipfile.ZipFile(self.location)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise DataError(
                f"{self.location} is not a readable zip file ({exc}); it is probably truncated or corrupt: "
                f"delete it and download it again"
            ) from None

    def names(self) -> list[str]:
        return [info.filename for info in self._zip.infolist() if not info.is_dir()]

    def read(self, name: str) -> bytes:
        """A member's bytes, refused (before anything is inflated) past MAX_MEMBER_BYTES: a small zip can hold a
        member that inflates to gigabytes, and no image or label file of these data sets comes near the limit."""
        try:
            declared = self._zip.getinfo(name).file_size
            if declared > MAX_MEMBER_BYTES:
                raise DataError(_too_large(self.where(name), f"declares {declared:,} bytes"))
            with self._zip.open(name) as member:
                data = member.read(MAX_MEMBER_BYTES + 1)  # the cap holds even if the declared size is false
            if len(data) > MAX_MEMBER_BYTES:
                raise DataError(_too_large(self.where(name), "inflates past its declared size"))
            return data
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError) as exc:
            raise DataError(
                f"cannot read {self.where(name)} ({exc}); the zip is corrupt or truncated: delete it and "
                "download it again"
            ) from None

    def where(self, name: str) -> str:
        return f"{self.location}:{name}"

    def fingerprint(self) -> str:
        return file_sha256(self.location)


class FolderSource(FileSource):
    """Files under a folder. The fingerprint hashes names, sizes and modification times (fast for 30k files)."""

    def __init__(self, path: Path) -> None:
        self.location = Path(path)
        self._names: Optional[list[str]] = None

    def names(self) -> list[str]:
        if self._names is None:
            self._names = sorted(
                p.relative_to(self.location).as_posix() for p in self.location.rglob("*") if p.is_file()
            )
        return self._names

    def read(self, name: str) -> bytes:
        try:
            return (self.location / name).read_bytes()
        except OSError as exc:
            raise DataError(f"cannot read {self.where(name)}: {exc.strerror}") from None

    def where(self, name: str) -> str:
        return str(self.location / name)

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for name in self.names():
            stat = (self.location / name).stat()
            digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()


def open_source(path: Path) -> FileSource:
    """A zip file or a folder, by what `path` is."""
    return ZipSource(path) if path.is_file() else FolderSource(path)


def candidates(root: Path, set_name: str) -> list[Path]:
    """Every place an image set may be, in the order they are tried."""
    return [
        root / f"{set_name}.zip",
        root / set_name,
        root / TORCHVISION_FOLDER / f"{set_name}.zip",
        root / TORCHVISION_FOLDER / set_name,
    ]


def locate(root: Path, set_names: list[str], download: bool) -> dict[str, FileSource]:
    """Find every set under `root` (fetching missing ones when `download`), or say where we looked and how to fix it."""
    if root.exists() and not root.is_dir():
        raise DataError(
            f"dataset.root={root} is a file, not a folder: give the folder that holds Omniglot's zips "
            "(images_background.zip, images_evaluation.zip) or their extracted folders"
        )
    found: dict[str, FileSource] = {}
    missing: list[str] = []
    for name in set_names:
        place = next((p for p in candidates(root, name) if p.is_file() or (p.is_dir() and any(p.iterdir()))), None)
        if place is not None:
            found[name] = open_source(place)
        elif download:
            found[name] = ZipSource(download_file(f"{URL_PREFIX}/{name}.zip", candidates(root, name)[0], md5=MD5[name]))
        else:
            missing.append(name)
    if missing:
        folders = "\n  ".join(str(p) for p in (root, root / TORCHVISION_FOLDER))
        raise DataError(
            f"Omniglot not found: no {' or '.join(missing)} (.zip or folder) under dataset.root={root}; set "
            "dataset.root to the folder that holds them, or add dataset.download=true to fetch them into it. "
            f"Looked in:\n  {folders}"
        )
    return found
