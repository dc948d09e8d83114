"""Checkpoints: one self-describing file, written atomically, loaded with weights_only=True.

A checkpoint carries the resolved run config (as YAML text), so `mode=eval checkpoint=PATH` can
rebuild the exact data set, model and algorithm it was trained with.
"""

from __future__ import annotations

import io
import random
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from metalearn.config.compat import upgrade_saved_config
from metalearn.errors import CheckpointError
from metalearn.files import atomic_write

FORMAT = "metalearn-checkpoint"
VERSION = 1


def rng_state() -> dict[str, Any]:
    """Every global RNG state, as tensors and plain values so weights_only loading accepts it."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_as_tuple(state["python"]))
    np_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(value: Any) -> Any:
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value


def save_checkpoint(path: Path, midway: Callable[[], None] | None = None, **payload: Any) -> None:
    """Write atomically (temporary file, fsync, rename, fsync of the folder): a crash at any moment
    leaves either the previous file or the new one, never a broken one. `midway` is called halfway
    through the bytes, once they are flushed (the test hooks of metalearn.training.faults)."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **payload}, buffer)
    data = buffer.getbuffer()

    def write(handle: Any) -> None:
        half = len(data) // 2
        handle.write(data[:half])
        if midway is not None:
            handle.flush()
            midway()
        handle.write(data[half:])

    atomic_write(Path(path), write)


def require(blob: dict[str, Any], path: str | Path, keys: tuple[str, ...], purpose: str) -> None:
    """A CheckpointError naming the file and the missing entries when `blob` lacks what `purpose` needs."""
    missing = [k for k in keys if k not in blob]
    if missing:
        raise CheckpointError(f"checkpoint {path} cannot be used to {purpose}: it has no {', '.join(missing)}")


def load_state_checked(module: nn.Module, state: Any, path: str | Path, hint: str = "") -> None:
    """load_state_dict, but a mismatch names the file and the differing entries instead of a torch dump."""
    own = module.state_dict()
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds no model state")
    problems = [f"missing {k}" for k in own if k not in state]
    problems += [f"unexpected {k}" for k in state if k not in own]
    problems += [
        f"{k} has shape {list(state[k].shape)} in the checkpoint but {list(v.shape)} here"
        for k, v in own.items()
        if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(v.shape)
    ]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise CheckpointError(
            f"checkpoint {path} does not fit this model/algorithm: {'; '.join(problems[:3])}{more}{hint}"
        )
    module.load_state_dict(state)


def checkpoint_file(path: str | Path) -> Path:
    """The checkpoint `path` names: a .pt file, or a run directory (its checkpoints/best.pt)."""
    path = Path(path).expanduser()
    if path.is_dir():
        for candidate in (path / "checkpoints" / "best.pt", path / "best.pt"):
            if candidate.is_file():
                return candidate
        raise CheckpointError(
            f"checkpoint {path} is a folder without checkpoints/best.pt: give a run directory or a checkpoint file"
        )
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and check a checkpoint (a file, or a run directory's best.pt); any problem is a CheckpointError naming
    the file."""
    path = checkpoint_file(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint {path} cannot be read: it is truncated, corrupt or not a checkpoint ({type(exc).__name__})"
        ) from exc
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a metalearn checkpoint")
    if blob.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {blob.get('version')}; this metalearn reads version {VERSION}"
        )
    for entry, kind in _ENTRY_TYPES.items():
        if entry in blob and not kind(blob[entry]):
            raise CheckpointError(
                f"checkpoint {path} is damaged or not metalearn's: its entry {entry!r} is a "
                f"{type(blob[entry]).__name__}, not {_ENTRY_NAMES[entry]}"
            )
    return blob


def _str_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in value.items()
    )


# what each entry of a checkpoint must be, checked before any of it is used
_ENTRY_TYPES: dict[str, Callable[[Any], bool]] = {
    "config": lambda v: isinstance(v, str),
    "choices": _str_map,
    "learner": lambda v: isinstance(v, dict),
    "iteration": lambda v: isinstance(v, int) and not isinstance(v, bool),
}
_ENTRY_NAMES = {
    "config": "YAML text",
    "choices": "a mapping of group names to options",
    "learner": "a state dict",
    "iteration": "an integer",
}


def saved_config(text: str, source: str | Path) -> DictConfig:
    """A saved run config (a checkpoint's, or a run's .hydra/config.yaml) read as data: a value that calls a
    resolver (`${oc.env:HOME}`, `${now:...}`) is refused, so a file cannot make this run read the environment or
    decide anything; earlier versions' configs are upgraded (metalearn.config.compat)."""
    cfg = OmegaConf.create(text)
    if not isinstance(cfg, DictConfig):
        raise CheckpointError(f"{source} holds no run config")
    raw = OmegaConf.to_container(cfg, resolve=False)
    for key, value in _leaves(raw):
        if isinstance(value, str) and re.search(r"\$\{[^}]*:", value):
            raise CheckpointError(
                f"{source} holds {key}={value!r}, which calls a resolver; a saved config is data: edit the value "
                "or give it on the command line"
            )
    return upgrade_saved_config(cfg)


def _leaves(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [leaf for k, v in node.items() for leaf in _leaves(v, f"{prefix}{k}.")]
    if isinstance(node, list):
        return [leaf for i, v in enumerate(node) for leaf in _leaves(v, f"{prefix[:-1]}[{i}].")]
    return [(prefix[:-1], node)]
