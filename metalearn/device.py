"""Pick the torch device named by the `device` config group, and set up the process's memory allocator."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import torch

from metalearn.errors import ConfigError


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def resolve_device(name: str, index: int | None = None) -> torch.device:
    """auto: cuda if available, then mps, then cpu. An explicit device that is absent is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                "device=cuda was asked for, but torch sees no CUDA GPU here; use device=auto or device=cpu"
            )
        count = torch.cuda.device_count()
        if index is not None and not 0 <= index < count:
            raise ConfigError(
                f"device.index={index} is invalid: this machine has {count} CUDA device(s), 0..{count - 1}"
            )
        return torch.device("cuda", index or 0)
    if name == "mps":
        if not _mps_available():
            raise ConfigError(
                "device=mps was asked for, but torch sees no Apple MPS device; use device=auto or device=cpu"
            )
        return torch.device("mps")
    return torch.device("cpu")


# environment variables that set torch's CPU thread count when it starts (and OpenMP's / MKL's)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask: what taskset, cgroups or SLURM left it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def explicit_threads() -> str | None:
    """`NAME=VALUE` of the variable of THREAD_VARIABLES that set torch's thread count, or None."""
    return next((f"{name}={os.environ[name]}" for name in THREAD_VARIABLES if os.environ.get(name)), None)


def limit_threads(threads: int | None) -> int:
    """Run torch's CPU operations on `threads` threads (at least 1), for a process that shares the machine with other
    jobs, unless the environment set a count (THREAD_VARIABLES), which is left as it is; None leaves it too.
    Returns torch's thread count."""
    if threads is not None and explicit_threads() is None:
        torch.set_num_threads(max(1, threads))
    return torch.get_num_threads()


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_MAX = 32 << 20  # glibc's ceiling for M_MMAP_THRESHOLD on 64-bit systems
_TRIM_THRESHOLD = 1 << 30


def reuse_freed_memory() -> bool:
    """Have glibc's malloc keep freed memory for reuse instead of giving it back to the OS at once.

    Why: a meta-iteration allocates and frees gigabytes of activations. By default glibc returns large
    blocks to the OS (munmap, heap trimming), so every iteration page-faults them in again
    (docs/performance.md). Afterwards blocks up to 32 MB come from the heap and up to 1 GB of free heap
    is kept. Returns False where there is no glibc (macOS, musl), which is left as it is. Process-wide;
    `device.reuse_memory=false` skips it.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
