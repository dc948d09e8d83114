"""Checksummed downloads: a file is either complete and verified at `dest`, or not there at all.

The bytes stream into a temporary file beside `dest` while their md5/sha256 are computed; only when the
digests match is the file renamed into place (metalearn.files' atomic write). A network failure or a
checksum mismatch is a DataError that names the URL, the file and what to do about it.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO, Optional

from metalearn.errors import DataError
from metalearn.files import atomic_write

_CHUNK = 1 << 20


def _verify(name: str, expected: Optional[str], digest: "hashlib._Hash", url: str, dest: Path) -> None:
    if expected is not None and digest.hexdigest().lower() != expected.lower():
        raise DataError(
            f"the download of {url} to {dest} failed its {name} check: expected {expected.lower()}, "
            f"got {digest.hexdigest()}; the file was not kept. The server may serve a different or damaged "
            f"file: retry, or download it by hand and place it at {dest}"
        )


def download_file(
    url: str, dest: str | Path, md5: Optional[str] = None, sha256: Optional[str] = None, timeout: float = 60.0
) -> Path:
    """Fetch `url` to `dest` atomically and check the given digests; return `dest`.

    Any URL scheme urllib understands works, including file:// (used by the tests).
    """
    dest = Path(dest).expanduser()
    hashes = {"md5": (md5, hashlib.md5()), "sha256": (sha256, hashlib.sha256())}

    def write(handle: BinaryIO) -> None:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                while block := response.read(_CHUNK):
                    handle.write(block)
                    for _, digest in hashes.values():
                        digest.update(block)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise DataError(
                f"could not download {url} to {dest}: {reason}. Check the network connection, or download "
                f"the file by hand and place it at {dest}"
            ) from None
        for name, (expected, digest) in hashes.items():
            _verify(name, expected, digest, url, dest)

    try:
        atomic_write(dest, write)
    except PermissionError as exc:
        raise DataError(
            f"cannot write the download of {url} to {dest}: {exc.strerror}; choose a writable folder"
        ) from None
    return dest
