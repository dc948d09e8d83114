"""File writes that never leave a half-written file behind."""

from __future__ import annotations

import atexit
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a completed rename) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Any) -> None:
    """Write through a temporary file in the same folder, fsync, then rename over `path`.

    `write(handle)` streams the bytes into the binary handle.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
        _fsync_dir(path.parent)  # make the rename itself durable
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def remove_stale_temporaries(folder: Path) -> None:
    """Delete the temporary files of atomic writes into `folder` that a killed process left (.NAME.XXXX.tmp).
    Call it only on a folder this process owns, where no other write can be in progress."""
    for tmp in Path(folder).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def atomic_torch_save(obj: Any, path: Path) -> None:
    import torch  # here, so that what reads run directories (the report, the sweep summary) starts fast

    atomic_write(path, lambda handle: torch.save(obj, handle))


def atomic_write_json(obj: Any, path: Path) -> None:
    atomic_write(path, lambda handle: handle.write((json.dumps(obj, indent=2) + "\n").encode()))


def append_jsonl(obj: Any, path: Path) -> None:
    """Append one JSON row and flush it to disk, so a crash loses at most the row being written."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(obj) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


# --- what a run leaves: results.json when it finished, failed.json when it did not ---------------------------
RESULTS_FILE = "results.json"
FAILED_FILE = "failed.json"


def record_failure(run_dir: Path, status: str, message: str, exit_code: int, overrides: list[str]) -> None:
    """Write FAILED_FILE into a run directory this process owns: how the run ended ("failed" or "interrupted"),
    the one-line message it printed and its exit code, so a sweep's report can list it."""
    record = {"status": status, "error": message, "exit_code": exit_code, "overrides": overrides}
    atomic_write_json(record, Path(run_dir) / FAILED_FILE)


# --- an exclusive claim on a folder -----------------------------------------------------------------------
CLAIM_FILE = ".metalearn.lock"
_CLAIMED: set[Path] = set()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True


def claim_holder(folder: Path) -> int | None:
    """The pid of the live process that holds `folder`'s claim, or None (no claim, or a stale one)."""
    try:
        text = (Path(folder) / CLAIM_FILE).read_text()
    except (FileNotFoundError, NotADirectoryError):
        return None
    pid, _, host = text.partition(" ")
    if not pid.strip().isdigit() or host.strip() not in ("", platform.node()):
        return -1  # unreadable, or held from another machine: treat as held
    return int(pid) if _alive(int(pid)) else None


def claim(folder: Path) -> bool:
    """Take `folder` for this process: create it and FOLDER/.metalearn.lock with O_EXCL (our pid and host), released
    at exit. True if this process holds the claim now (also when it did already); False if a live process holds it.
    A claim left by a process that died (SIGKILL, power cut) is stale and taken over."""
    folder = Path(folder).resolve()
    if folder in _CLAIMED:
        return True
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / CLAIM_FILE
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if claim_holder(folder) is not None:
                return False
            try:  # stale: remove it and try once more (another process may win that race)
                lock.unlink()
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{os.getpid()} {platform.node()}\n")
        if not _CLAIMED:
            atexit.register(_release_all)
        _CLAIMED.add(folder)
        return True
    return False


def release(folder: Path) -> None:
    """Give up this process's claim on `folder` (nothing if it holds none)."""
    folder = Path(folder).resolve()
    if folder in _CLAIMED:
        _CLAIMED.discard(folder)
        try:
            (folder / CLAIM_FILE).unlink()
        except FileNotFoundError:
            pass


def _release_all() -> None:
    for folder in list(_CLAIMED):
        release(folder)
