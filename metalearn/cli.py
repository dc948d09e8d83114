"""The `metalearn` command (and `python -m metalearn`): a Hydra app over conf/.

Every failure ends in one `Error: ...` line on stderr and a non-zero exit, never a traceback (set
HYDRA_FULL_ERROR=1 for one): our own errors (exit 2), Hydra's composition errors (exit 2), file-system
errors and, as a last resort, unexpected ones (exit 1). SIGINT / SIGTERM stop training at a safe point
with a checkpoint and the command that resumes (exit 130 / 143).
"""

from __future__ import annotations

import os
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from metalearn.errors import MetalearnError

# A resumed run keeps its original .hydra/ (config, overrides); the resuming command's go beside them.
_RESUME_SUBDIR = ".hydra/resume-{stamp}"


def config_dir() -> Path:
    """conf/ beside the package in a source checkout or editable install; metalearn/conf in a wheel.

    Registers the schemas' defaults in Hydra's ConfigStore too, which the YAML files inherit, so whoever
    composes metalearn's configs (this command, the tests, a notebook) gets both from here.
    """
    from metalearn.config.registry import register_schemas

    register_schemas()
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "conf", here / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise RuntimeError(f"metalearn's configs are missing: looked in {here.parent / 'conf'} and {here / 'conf'}")


def compose_config(overrides: list[str]) -> tuple[DictConfig, dict[str, str]]:
    """The config `metalearn OVERRIDES` would run (without Hydra's own node), and its group choices.

    For scripts, notebooks and tests that build metalearn's components without the command line.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    choices = {k: v for k, v in cfg.hydra.runtime.choices.items() if not k.startswith("hydra")}
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices


def _full_errors() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def _fail(message: str, code: int) -> None:
    print(f"Error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def _app(cfg: DictConfig) -> None:
    from metalearn.run import run  # imported here so --help stays fast
    from metalearn.training.interrupt import Interrupted, handle_signals
    from metalearn.training.resume import resume_command

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        with handle_signals():
            run(cfg, run_dir, list(hydra_cfg.overrides.task), dict(hydra_cfg.runtime.choices))
    except Interrupted as exc:
        if _full_errors():
            raise
        trained = (run_dir / "checkpoints" / "last.pt").is_file() and cfg.mode == "train"
        if exc.message:
            what = exc.message
        elif cfg.mode == "eval":
            what = "evaluation stopped; no results were written"
        else:
            what = (
                "the final test was stopped after training" if trained else "stopped before any checkpoint was written"
            )
        hint = f"; resume with: {resume_command(run_dir)}" if trained else ""
        print(f"Interrupted by {exc.signal_name}: {what}{hint}", file=sys.stderr, flush=True)
        sys.exit(exc.exit_code)
    except MetalearnError as exc:
        if _full_errors():
            raise
        _fail(str(exc), 2)
    except OSError as exc:  # a file-system problem outside our own checks (full disk, permissions)
        if _full_errors():
            raise
        where = f" {exc.filename}" if exc.filename else ""
        _fail(f"cannot access{where}: {exc.strerror or exc}", 2)
    except Exception as exc:  # a bug: still one line by default, the traceback on request
        if _full_errors():
            raise
        first = (str(exc).splitlines() or [""])[0]
        _fail(
            f"unexpected {type(exc).__name__}: {first} (set HYDRA_FULL_ERROR=1 for the traceback; please report it)", 1
        )


# --- Hydra's own errors (bad override syntax, unknown group option, unknown key), as one line ------------
def _hydra_message(exc: BaseException) -> str:
    from hydra.errors import MissingConfigException, OverrideParseException

    text = str(exc)
    found = re.search(r"Could not find '([^']+)/([^'/]+)'", text)
    if isinstance(exc, MissingConfigException) and found:
        group, option = found.groups()
        options = ", ".join(exc.options or [])
        return f"{group}={option} is not an option of {group}" + (f"; choose one of: {options}" if options else "")
    if isinstance(exc, OverrideParseException):
        return f"cannot parse the override {exc.override!r}: {text.splitlines()[0]} (see metalearn --help)"
    found = re.search(r"Multiple values for (\S+)\. To override a value use 'override \S+: ([^']+)'", text)
    if found:  # `+experiment=NAME`: the group is in the defaults list already
        group, option = found.groups()
        return f"{group} is chosen in the defaults list already: write {group}={option} (without the +)"
    found = re.search(r"Could not override '([^']+)'", text)
    if found:
        cause = str(exc.__cause__ or "").splitlines()
        reason = cause[0] if cause else ""
        if "not in struct" in reason:
            return f"{found.group(1)} is not a known key; metalearn --help lists the keys"
        return f"cannot set {found.group(1)}: {reason or text.splitlines()[0]}"
    lines = [line.strip() for line in text.split("\n\n")[0].splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__


def _run_and_report(original: Any) -> Any:
    def wrapped(func: Any) -> Any:
        from hydra.errors import CompactHydraException

        def guarded() -> Any:
            try:
                return func()
            except CompactHydraException as exc:
                if _full_errors():
                    raise
                _fail(_hydra_message(exc), 2)  # SystemExit passes through Hydra's `except Exception`
            except OSError as exc:  # Hydra creating the run directory or writing .hydra/
                if _full_errors():
                    raise
                _fail(
                    f"cannot write to the output directory {exc.filename}: {exc.strerror or exc}; "
                    "choose another with hydra.run.dir=PATH",
                    2,
                )

        return original(guarded)  # anything else: Hydra's own report

    return wrapped


def _compact_hydra_errors() -> None:
    """Route Hydra's composition errors through `_hydra_message` (guarded: a newer Hydra keeps its own)."""
    try:
        from hydra._internal import utils as hydra_utils
    except ImportError:  # pragma: no cover
        return
    original = getattr(hydra_utils, "run_and_report", None)
    if original is not None and not getattr(original, "_metalearn", False):
        wrapped = _run_and_report(original)
        wrapped._metalearn = True  # type: ignore[attr-defined]
        hydra_utils.run_and_report = wrapped


# --- resume: run in the stopped run's directory, keep its .hydra/ --------------------------------------
def _arg_value(argv: list[str], key: str) -> str | None:
    """The value of `key=VALUE` (or `+key=` / `++key=`) on the command line, if given."""
    for arg in argv:
        found = re.fullmatch(rf"\+{{0,2}}{re.escape(key)}=(.*)", arg)
        if found:
            return found.group(1).strip("'\"")
    return None


def _resume_argv(argv: list[str]) -> list[str]:
    """`resume=PATH` runs in PATH's run directory; any resume keeps the run's original .hydra/ files."""
    from metalearn.training.resume import run_dir_of

    resume, trainer_resume = _arg_value(argv, "resume"), _arg_value(argv, "trainer.resume")
    if not (resume not in (None, "", "null") or (trainer_resume or "").lower() == "true"):
        return argv
    extra = []
    if resume not in (None, "", "null") and _arg_value(argv, "hydra.run.dir") is None:
        assert resume is not None
        if not Path(resume).expanduser().exists():
            _fail(f"resume={resume}: no such file or directory; give the run directory of the run to continue", 2)
        try:
            extra.append(f"hydra.run.dir={run_dir_of(resume)}")
        except MetalearnError as exc:
            _fail(str(exc), 2)
    if _arg_value(argv, "hydra.output_subdir") is None:
        extra.append(f"hydra.output_subdir={_RESUME_SUBDIR.format(stamp=datetime.now().strftime('%Y-%m-%d_%H-%M-%S'))}")
    return argv + extra


# --- mode=eval: compose with the checkpoint's own options, so their keys can be overridden ---------------
def _eval_argv(argv: list[str]) -> list[str]:
    """Add `group=<the checkpoint's option>` for each saved group the command does not name.

    Why: Hydra composes the default options first (algorithm=protonet), where MAML's keys do not exist, so
    `mode=eval checkpoint=P algorithm.eval_inner_steps=10` would fail as an unknown key. An unreadable
    checkpoint adds nothing here; the run then reports it.
    """
    from metalearn.run import SAVED_GROUPS
    from metalearn.training.checkpoint import load_checkpoint

    checkpoint = _arg_value(argv, "checkpoint")
    if _arg_value(argv, "mode") != "eval" or checkpoint in (None, "", "null"):
        return argv
    try:
        choices = dict(load_checkpoint(checkpoint).get("choices", {}))
    except MetalearnError:
        return argv
    named = {re.sub(r"^[+~]{1,2}", "", arg).split("=")[0] for arg in argv}
    named |= {arg[1:].split(".")[0] for arg in argv if re.match(r"\+[^+]", arg)}  # `+group.KEY=V` adds to the defaults
    return argv + [f"{group}={choices[group]}" for group in SAVED_GROUPS if group in choices and group not in named]


def main() -> None:
    _compact_hydra_errors()
    sys.argv = [sys.argv[0], *_eval_argv(_resume_argv(sys.argv[1:]))]
    try:
        _app()
    except KeyboardInterrupt:  # Ctrl-C before the run's own handlers are in place (start-up, composition)
        if _full_errors():
            raise
        print("Interrupted by SIGINT before the run started; nothing was written", file=sys.stderr, flush=True)
        sys.exit(130)
