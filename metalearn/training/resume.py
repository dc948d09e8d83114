"""Resuming a run: which checkpoint, which config, and the refusal to continue with a different config.

`metalearn trainer.resume=true hydra.run.dir=RUN` or `metalearn resume=RUN` (or resume=RUN/checkpoints/
last.pt) continue RUN in place. The config comes from the checkpoint (or, if the run died before its
first checkpoint, from RUN/.hydra/config.yaml), so the original overrides need not be repeated; an
override given on the resume command line that differs from the run's value is refused, naming the key.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from metalearn.config.schema import parse_bool
from metalearn.errors import CheckpointError, ConfigError
from metalearn.training.checkpoint import load_checkpoint, saved_config

# Keys a resume may change: they do not affect the numbers.
FREE_KEYS = ("trainer.resume", "resume", "trainer.progress", "checkpoint", "dataset.cache_dir")
_MISSING = object()


def wants_resume(resume: Any, trainer_resume: Any) -> bool:
    """Whether a command continues a stopped run: `resume=PATH`, or `trainer.resume` true as the schemas read
    booleans ("true", "yes", 1 ...). A value that is no boolean counts as false here; validation reports it."""
    if resume not in (None, "", "null"):
        return True
    try:
        return parse_bool(trainer_resume, "trainer.resume")
    except ConfigError:
        return False


def run_dir_of(path: str | Path) -> Path:
    """The run directory of `resume=PATH`: PATH itself, or RUN for RUN/checkpoints/NAME.pt."""
    path = Path(path).expanduser()
    if path.is_dir():
        return path
    if path.parent.name == "checkpoints":
        return path.parent.parent
    raise CheckpointError(
        f"resume={path}: give a run directory or a checkpoint inside RUN/checkpoints/ (the run continues in RUN)"
    )


def resume_command(run_dir: Path) -> str:
    """The exact command that continues the run in `run_dir`."""
    try:
        shown = Path(os.path.relpath(run_dir))
        shown = shown if not str(shown).startswith("..") else Path(run_dir)
    except ValueError:  # another drive (Windows)
        shown = Path(run_dir)
    return f"metalearn resume={shlex.quote(str(shown))}"


def _saved_choices(run_dir: Path) -> dict[str, str]:
    hydra_yaml = run_dir / ".hydra" / "hydra.yaml"
    if not hydra_yaml.is_file():
        return {}
    node = OmegaConf.select(OmegaConf.load(hydra_yaml), "hydra.runtime.choices", default=None)
    return dict(OmegaConf.to_container(node)) if node is not None else {}  # type: ignore[arg-type]


def find_resume_source(cfg: DictConfig, run_dir: Path) -> tuple[Path | None, dict[str, Any] | None]:
    """(checkpoint path, loaded checkpoint) to continue from; (None, None) to start from iteration 0."""
    run_dir = Path(run_dir)
    if cfg.get("resume"):
        target = Path(str(cfg.resume)).expanduser()
        if not target.exists():
            raise CheckpointError(f"resume={cfg.resume}: no such file or directory")
        if run_dir_of(target).resolve() != run_dir.resolve():
            raise ConfigError(
                f"resume={cfg.resume} continues in its own run directory {run_dir_of(target)}; "
                f"drop hydra.run.dir={run_dir} (or use trainer.resume=true hydra.run.dir=RUN)"
            )
        path = target / "checkpoints" / "last.pt" if target.is_dir() else target
        if not path.is_file() and not (run_dir / ".hydra" / "config.yaml").is_file():
            raise CheckpointError(f"resume={cfg.resume}: {run_dir} holds no run to resume (no {path})")
    else:
        path = run_dir / "checkpoints" / "last.pt"
    if path.is_file():
        blob = load_checkpoint(path)
        return path, blob
    print(f"no checkpoint in {path.parent} yet: training starts from iteration 0", file=sys.stderr, flush=True)
    return None, None


def config_differences(
    cfg: DictConfig, overrides: list[str], choices: dict[str, str], saved: DictConfig, saved_choices: dict[str, str]
) -> list[str]:
    """The command-line overrides whose value differs from the saved run's, as `key=new (the run used old)`."""
    differences = []
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group.lstrip("+~")
        if key in FREE_KEYS or key.startswith("hydra"):
            continue
        if key in choices or key in saved_choices:
            new, old = choices.get(key, _MISSING), saved_choices.get(key, _MISSING)
        else:
            new = OmegaConf.select(cfg, key, default=_MISSING)
            old = OmegaConf.select(saved, key, default=_MISSING)
        if new != old:
            shown_old = "no such key" if old is _MISSING else repr(old)
            differences.append(f"{key}={'(deleted)' if new is _MISSING else repr(new)} (the run used {shown_old})")
    return differences


def resumed_config(
    cfg: DictConfig,
    overrides: list[str],
    choices: dict[str, str],
    run_dir: Path,
    checkpoint: dict[str, Any] | None,
    where: Path,
) -> tuple[DictConfig, dict[str, str]]:
    """The run's own config (from the checkpoint or .hydra/config.yaml) with this command's free keys on top.

    Returns (config, choices). Raises ConfigError naming every key the command changes.
    """
    if checkpoint is not None:
        saved = saved_config(checkpoint["config"], f"checkpoint {where}")
        saved_choices = dict(checkpoint.get("choices") or {})
    elif (run_dir / ".hydra" / "config.yaml").is_file():
        saved = saved_config((run_dir / ".hydra" / "config.yaml").read_text(), run_dir / ".hydra" / "config.yaml")
        saved_choices = _saved_choices(run_dir)
    else:  # nothing was ever started here: a plain new run
        return cfg, choices
    assert isinstance(saved, DictConfig)
    differences = config_differences(cfg, overrides, choices, saved, saved_choices)
    if differences:
        raise ConfigError(
            f"cannot resume {where} with a different config: {'; '.join(differences)}. "
            "Resume with the run's own settings (they are restored from the run; no need to repeat them) "
            "or start a new run in a new directory"
        )
    # The saved config as it was (resume keys included), so later checkpoints equal an uninterrupted run's.
    here: dict = {"trainer": {"progress": cfg.trainer.progress}, "mode": "train"}
    if "cache_dir" in saved.get("dataset", {}) and "cache_dir" in cfg.get("dataset", {}):
        here["dataset"] = {"cache_dir": cfg.dataset.cache_dir}  # where this run writes: its own command's choice
    merged = OmegaConf.merge(saved, here)
    return merged, {**choices, **saved_choices}  # type: ignore[return-value]
