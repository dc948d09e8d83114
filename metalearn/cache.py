"""Where built data sets are cached, and the keys that say when a cache is stale."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Optional

from metalearn.errors import ConfigError


def default_cache_dir() -> Path:
    """$METALEARN_CACHE if set, else ~/.cache/metalearn. An empty $METALEARN_CACHE is refused: it would mean the
    current folder."""
    value = os.environ.get("METALEARN_CACHE")
    if value is not None and not value.strip():
        raise ConfigError("METALEARN_CACHE is set but empty; unset it (for ~/.cache/metalearn) or give a folder")
    return Path(value or Path.home() / ".cache" / "metalearn").expanduser()


def cache_file(cache_dir: Optional[str], prefix: str, settings: dict[str, Any]) -> Path:
    """The cache file of a built data set: `<cache>/<prefix>-<hash of settings and source keys>.pt`."""
    base = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    return base / f"{prefix}-{settings_key(settings)}.pt"


def settings_key(settings: dict[str, Any]) -> str:
    """A short stable hash of build settings (and source checksums), used in cache file names."""
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_digest(path: Path, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    return file_digest(path, "sha256")


def file_md5(path: Path) -> str:
    """md5 only to compare with published checksums (as torchvision does), never for security."""
    return file_digest(path, "md5")
