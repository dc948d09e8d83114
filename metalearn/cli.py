"""The `metalearn` command (and `python -m metalearn`): two Hydra apps over conf/, one to train and one to
evaluate a checkpoint (`mode=eval`).

The command line is read, never rewritten. Before Hydra starts, `main` composes the config once with
Hydra's public compose API, so that a mistake in it (bad syntax, an unknown option or key, an unwritable
output directory) ends in one `Error: ...` line and exit code 2 before anything is written; with
`mode=eval` it first registers the checkpoint's saved config in Hydra's ConfigStore, where conf/eval.yaml
picks it up, so `algorithm.eval_inner_steps=10` reaches the checkpoint's own algorithm. `resume=RUN` runs
in RUN and keeps its .hydra/ files: conf/app.yaml derives hydra.run.dir and hydra.output_subdir from
`resume` and `trainer.resume` through the resolvers registered here.

Inside a run every failure ends in one `Error: ...` line on stderr and a non-zero exit, never a traceback
(set HYDRA_FULL_ERROR=1 for one): our own errors (exit 2), file-system errors and, as a last resort,
unexpected ones (exit 1). SIGINT / SIGTERM stop training at a safe point with a checkpoint and the
command that resumes (exit 130 / 143).
"""

from __future__ import annotations

import os
import re
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from metalearn.errors import MetalearnError

# Hydra's flags that take a value (the next word), so that the words after them are not read as overrides
_VALUE_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--cfg", "-c", "--package", "-p"}
_INFO_VALUES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}
# flags after which Hydra only prints something: no run, nothing to check
_PRINT_ONLY = {"--help", "-h", "--hydra-help", "--info", "-i", "--shell-completion", "-sc", "--version"}
# Hydra takes one of these per command
_MODES = {"--run", "-r", "--multirun", "-m", "--cfg", "-c", "--info", "-i", "--shell-completion", "-sc"}
_SWITCHES = {"--resolve", "--run", "-r", "--multirun", "-m", "--experimental-rerun"}


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


# --- reading the command line ------------------------------------------------------------------------
def _split_argv(argv: list[str]) -> tuple[dict[str, str | None], list[str]]:
    """Hydra's flags (with their values) and the overrides, as `metalearn ARGV` passes them to Hydra."""
    flags: dict[str, str | None] = {}
    overrides: list[str] = []
    words = iter(argv)
    for word in words:
        if not word.startswith("-"):
            overrides.append(word)
            continue
        name, eq, value = word.partition("=")
        if eq:
            flags[name] = value
        elif name in _VALUE_FLAGS:
            flags[name] = next(words, None)
        else:
            flags[name] = None
    if "--info" in flags or "-i" in flags:  # its optional value was read as an override
        if overrides and overrides[0] in _INFO_VALUES:
            overrides.pop(0)
    return flags, overrides


def _argv_problem(argv: list[str]) -> str | None:
    """What Hydra's argument parser would answer with its usage text, as one sentence: an unknown flag, or a flag
    between overrides (its parser takes the overrides as one run of words)."""
    known = _VALUE_FLAGS | _PRINT_ONLY | _SWITCHES
    kinds, words = [], iter(argv)
    for word in words:
        if not word.startswith("-"):
            kinds.append("override")
            continue
        name, eq, _ = word.partition("=")
        if name not in known:
            return f"unknown option {name}: metalearn --help lists the options (an override is KEY=VALUE, no dashes)"
        kinds.append("flag")
        if name in _VALUE_FLAGS and not eq:
            next(words, None)
    flags, overrides = _split_argv(argv)
    modes = [f for f in flags if f in _MODES]
    if len(modes) > 1:
        return f"{' and '.join(modes)} cannot be combined: give one of --run, --multirun, --cfg, --info"
    if "override" not in kinds:
        return None
    first, last = kinds.index("override"), len(kinds) - kinds[::-1].index("override")
    if "flag" in kinds[first:last]:
        ordered = [f"{k}={v}" if v is not None else k for k, v in flags.items()] + overrides
        return f"put the options before the overrides, as in: metalearn {' '.join(ordered)}"
    return None


def _last_values(overrides: list[str]) -> dict[str, str]:
    """key -> the value the command line gives it (the last one wins, as in Hydra), for plain `key=value`."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    values = {}
    for override in OverridesParser.create().parse_overrides(overrides):
        if not override.is_delete() and not override.is_sweep_override():
            values[override.key_or_group.lstrip("+")] = str(override.value())
    return values


# --- resolvers of conf/app.yaml: where a resumed run writes ------------------------------------------------
_CHOSEN: dict[str, str] = {}  # the default run directory this process took (Hydra composes twice: same answer)


def _run_dir(resume: Any, default: str) -> str:
    """hydra.run.dir: the run directory of `resume=PATH` (PATH, or RUN for RUN/checkpoints/NAME.pt); else `default`
    (outputs/DATE/TIME), or DEFAULT-1, DEFAULT-2, ... when another run took it in the same second: the folder is
    claimed here (metalearn.files.claim), so two runs never share it."""
    if resume not in (None, "", "null"):
        from metalearn.training.resume import run_dir_of

        return str(run_dir_of(str(resume)))
    if "run_dir" in _CHOSEN:
        return _CHOSEN["run_dir"]
    from metalearn.files import claim

    for n in range(1000):
        candidate = default if n == 0 else f"{default}-{n}"
        try:
            taken = claim(Path(candidate))
        except OSError:  # not creatable: the check before running says why
            return candidate
        if taken:
            _CHOSEN["run_dir"] = candidate
            return candidate
    raise MetalearnError(f"{default} and 999 folders beside it are in use; choose another with hydra.run.dir=PATH")


def _output_subdir(resume: Any, trainer_resume: Any) -> str:
    """hydra.output_subdir: a resumed run keeps its original .hydra/; the resuming command's files go beside them."""
    from metalearn.training.resume import wants_resume

    if not wants_resume(resume, trainer_resume):
        return ".hydra"
    return f".hydra/resume-{datetime.now().strftime('%Y-%m-%d_%H-%M-%S')}"


def _register_resolvers() -> None:
    for name, function in (("metalearn.run_dir", _run_dir), ("metalearn.output_subdir", _output_subdir)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function, use_cache=True)


# --- composing a run's config ----------------------------------------------------------------------------
def prepare(overrides: list[str]) -> str:
    """The primary config for OVERRIDES: "config", or "eval" with mode=eval, after registering the checkpoint's
    saved config (as `checkpoint_config`) in Hydra's ConfigStore. Raises MetalearnError for a checkpoint that
    cannot be read; Hydra's OverrideParseException for malformed overrides."""
    _register_resolvers()
    values = _last_values(overrides)
    resume = values.get("resume")
    if resume not in (None, "", "null"):
        from metalearn.training.resume import run_dir_of

        if not Path(resume).expanduser().exists():
            raise MetalearnError(
                f"resume={resume}: no such file or directory; give the run directory of the run to continue"
            )
        run_dir_of(resume)  # a path that names no run directory is refused here, in one line
    checkpoint = values.get("checkpoint")
    if values.get("mode") != "eval" or checkpoint in (None, "", "null"):
        return "config"  # without a checkpoint, validation says what mode=eval needs
    from hydra.core.config_store import ConfigStore
    from omegaconf import open_dict

    from metalearn.training.checkpoint import load_checkpoint, require, saved_config

    blob = load_checkpoint(checkpoint)
    require(blob, checkpoint, ("config", "learner"), "evaluate")
    saved = saved_config(blob["config"], f"checkpoint {checkpoint}")
    if isinstance(saved.get("dataset"), DictConfig) and "cache_dir" in saved.dataset:
        with open_dict(saved):
            saved.dataset.cache_dir = None  # where this run writes comes from its own command or environment
    ConfigStore.instance().store(name="checkpoint_config", node=saved)
    return "eval"


def compose_config(overrides: list[str]) -> tuple[DictConfig, dict[str, str]]:
    """The config `metalearn OVERRIDES` runs (without Hydra's own node), and its group choices.

    For scripts, notebooks and tests that build metalearn's components without the command line.
    """
    from omegaconf import open_dict

    cfg = _compose(overrides, prepare(overrides))
    choices = {k: v for k, v in cfg.hydra.runtime.choices.items() if not k.startswith("hydra")}
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices


def _compose(overrides: list[str], config_name: str, config_dirs: tuple[str, ...] = ()) -> DictConfig:
    """Hydra's compose API over conf/ (and the folders of --config-dir), Hydra's own node included."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    extra = (
        [f"hydra.searchpath=[{','.join(f'file://{Path(d).resolve()}' for d in config_dirs)}]"] if config_dirs else []
    )
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return compose(config_name, overrides=[*overrides, *extra], return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


# --- the two apps ------------------------------------------------------------------------------------------
def _full_errors() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def _fail(message: str, code: int) -> None:
    print(f"Error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def _job(cfg: DictConfig) -> None:
    """One run inside Hydra's job: errors become one line and an exit code."""
    from metalearn.run import run  # imported here so --help stays fast
    from metalearn.training.interrupt import Interrupted, handle_signals
    from metalearn.training.resume import resume_command

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    # the overrides as typed: `key=${...}` is text here, not an interpolation to resolve
    overrides = [str(o) for o in OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False)]  # type: ignore[union-attr]
    try:
        with handle_signals():
            run(cfg, run_dir, overrides, dict(hydra_cfg.runtime.choices))
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


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def train_app(cfg: DictConfig) -> None:
    """`metalearn ...`: meta-train, then test the best checkpoint."""
    _job(cfg)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="eval")
def eval_app(cfg: DictConfig) -> None:
    """`metalearn mode=eval checkpoint=PATH ...`: score a checkpoint, composed from its own saved config."""
    _job(cfg)


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
        return _parse_message(exc.override, text.splitlines()[0])
    found = re.search(r"Multiple values for (\S+)\. To override a value use 'override \S+: ([^']+)'", text)
    if found:  # `+experiment=NAME`: the group is in the defaults list already
        group, option = found.groups()
        return f"{group} is chosen in the defaults list already: write {group}={option} (without the +)"
    found = re.search(r"Could not append to config\. An item is already at '([^']+)'", text)
    if found:
        return f"{found.group(1)} is a key already: set it with {found.group(1)}=VALUE (without the +)"
    found = re.search(r"Could not override '([^']+)'", text)
    if found:
        cause = str(exc.__cause__ or "").splitlines()
        reason = cause[0] if cause else ""
        if "not in struct" in reason:
            return f"{found.group(1)} is not a known key; metalearn --help lists the keys"
        return f"cannot set {found.group(1)}: {reason or text.splitlines()[0]}"
    lines = [line.strip() for line in text.split("\n\n")[0].splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__


def _parse_message(override: str, reason: str) -> str:
    """An override Hydra's grammar refuses, with the quoting that fixes the usual causes: a value the shell split at
    a space (the second half arrives as an override of its own), or non-ASCII letters and other characters that
    the grammar only takes inside quotes."""
    key, equals, value = override.partition("=")
    if not equals:
        return (
            f"cannot parse the override {override!r}: an override is KEY=VALUE; if {override!r} is part of the value "
            f"before it, quote the whole value, e.g. 'dataset.root=\"my data\"'"
        )
    if value and not value.startswith(("'", '"')) and not re.fullmatch(r"[\w.,:/+\-\[\]{}()=*?@$%~]*", value, re.ASCII):
        return f"cannot parse the override {override!r}: quote the value, as in '{key}=\"{value}\"'"
    return f"cannot parse the override {override!r}: {reason} (see metalearn --help)"


def _check_output_dir(path: Path) -> None:
    """Refuse an output directory that cannot be created or written, before Hydra creates it."""
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    problem = None
    if not existing.is_dir():
        problem = os.strerror(20)  # ENOTDIR: "Not a directory"
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = os.strerror(13)  # EACCES: "Permission denied"
    if problem:
        raise MetalearnError(
            f"cannot write to the output directory {path}: {problem}; choose another with hydra.run.dir=PATH"
        )


def _check_before_running(flags: dict[str, str | None], overrides: list[str], config_name: str) -> None:
    """Compose the config as Hydra will (the first value of each sweep in a multirun) and check the run's
    output directory: what Hydra would report as a multi-line trace is one line here, before anything runs."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    multirun = "-m" in flags or "--multirun" in flags
    if multirun:
        parsed = OverridesParser.create().parse_overrides(overrides)
        overrides = [
            o.input_line if not o.is_sweep_override() else f"{o.get_key_element()}={next(o.sweep_string_iterator())}"
            for o in parsed
        ]
    dirs = tuple(d for d in (flags.get("--config-dir"), flags.get("-cd")) if d)
    cfg = _compose(overrides, config_name, dirs)
    if not multirun and not {"--cfg", "-c"} & set(flags):  # --cfg only prints the config
        _take_run_dir(cfg)


def _is_run(folder: Path) -> bool:
    """Whether `folder` is a metalearn run directory."""
    return any((folder / name).exists() for name in ("metrics.jsonl", "results.json", ".hydra"))


def _take_run_dir(cfg: DictConfig) -> None:
    """Make the run's directory this process's before Hydra writes anything into it: writable, holding no other
    run's outputs (unless resuming it), and claimed exclusively (metalearn.files.claim) for as long as we run."""
    from metalearn.files import claim, claim_holder
    from metalearn.run import check_run_dir
    from metalearn.training.resume import wants_resume

    text = str(OmegaConf.select(cfg, "hydra.run.dir") or "").strip()
    if not text:
        raise MetalearnError("hydra.run.dir is empty; give the folder the run writes into, or leave the default")
    run_dir = Path(text)
    inside = next((p for p in run_dir.resolve().parents if p.name == "checkpoints" and _is_run(p.parent)), None)
    if inside is not None:
        raise MetalearnError(
            f"hydra.run.dir={run_dir} is inside the checkpoints/ of the run in {inside.parent}; choose a folder "
            "outside any run"
        )
    _check_output_dir(run_dir)
    resuming = cfg.get("mode") == "train" and wants_resume(cfg.get("resume"), cfg.trainer.get("resume"))
    check_run_dir(run_dir, resuming)
    try:
        claimed = claim(run_dir)
    except OSError as exc:  # e.g. a read-only file system, which os.access may not see
        raise _unwritable(run_dir, exc) from None
    if not claimed:
        holder = claim_holder(run_dir)
        who = f"process {holder}" if holder and holder > 0 else "a process on another machine"
        raise MetalearnError(
            f"{run_dir} is in use by another metalearn run ({who}); wait for it to end or choose another "
            "hydra.run.dir=PATH"
        )
    _check_hydra_files(run_dir, cfg)


def _unwritable(run_dir: Path, exc: OSError) -> MetalearnError:
    where = exc.filename or run_dir
    return MetalearnError(f"cannot write {where}: {exc.strerror or exc}; choose another hydra.run.dir=PATH")


def _check_hydra_files(run_dir: Path, cfg: DictConfig) -> None:
    """Hydra writes its config copies (.hydra/) and its log into the run directory as the job starts;
    one it cannot write (a read-only folder, a file where its folder should be, a folder where its log should be)
    would end in Hydra's multi-line trace. Check both, and open the log, in the directory this process has claimed."""
    from metalearn.files import release

    log = run_dir / f"{OmegaConf.select(cfg, 'hydra.job.name') or 'metalearn'}.log"
    # .hydra, also for a resumed run's .hydra/resume-DATE_TIME (whose name is taken when Hydra resolves it)
    folder = run_dir / ".hydra"
    try:  # both checked before the log is created: a refused run leaves nothing behind
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(20, os.strerror(20), str(folder))
        if log.is_dir():
            raise IsADirectoryError(21, os.strerror(21), str(log))
        with open(log, "a"):
            pass
    except OSError as exc:
        release(run_dir)
        raise _unwritable(run_dir, exc) from None


def main() -> None:
    _CHOSEN.clear()
    argv = sys.argv[1:]
    flags, overrides = _split_argv(argv)
    problem = _argv_problem(argv)
    if problem:
        _fail(problem, 2)
    if (_PRINT_ONLY | {"--cfg", "-c"}) & set(flags) and hasattr(signal, "SIGPIPE"):
        # a command that only prints ends quietly when its reader goes, like any Unix filter (`--help | head -1`)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        config_name = prepare(overrides)
        if not _PRINT_ONLY & set(flags) and "--config-name" not in flags and "-cn" not in flags:
            _check_before_running(flags, overrides, config_name)
    except Exception as exc:
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException

        if _full_errors() or not isinstance(exc, (HydraException, OmegaConfBaseException, MetalearnError)):
            raise
        cause = exc.__cause__ if isinstance(exc.__cause__, MetalearnError) else exc  # raised inside a resolver
        message = str(cause) if isinstance(cause, MetalearnError) else _hydra_message(exc)
        _fail(message, 2)
    app = eval_app if config_name == "eval" else train_app
    try:
        app()
    except KeyboardInterrupt:  # Ctrl-C before the run's own handlers are in place (start-up, composition)
        if _full_errors():
            raise
        print("Interrupted by SIGINT before the run started; nothing was written", file=sys.stderr, flush=True)
        sys.exit(130)
