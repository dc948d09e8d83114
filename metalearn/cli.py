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

import logging
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

from metalearn.errors import MetalearnError, one_line

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


def _direction(target: Any) -> str:
    """hydra.sweeper.direction of conf/hparams_search: "minimize" when the data set `target` (dataset._target_) is
    regression (its `task`; the metric is MSE), else "maximize" (accuracy)."""
    from hydra.utils import get_object

    try:
        task = getattr(get_object(str(target)), "task", None)
    except Exception:  # not importable: composing the job says so
        task = None
    return "minimize" if task == "regression" else "maximize"


def _optuna_storage(sweep_dir: Any) -> str:
    """hydra.sweeper.storage of conf/hparams_search: an SQLite file in the sweep directory, which is created here:
    Optuna's sweeper opens its storage before Hydra's launcher creates the directory, and SQLite creates no
    folders. An absolute path, so that the study is found wherever the command runs from."""
    folder = Path(str(sweep_dir)).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'optuna.db'}"


_TRIAL_DIRS: dict[tuple[str, str], str] = {}  # (sweep dir, job number) -> the folder name this process gave it


def _trial_subdir(sweep_dir: Any, job_num: Any) -> str:
    """hydra.sweep.subdir of conf/hparams_search: the job's number or, when that folder is taken (a search continued
    in its sweep directory numbers its jobs from 0 again), the first free number after it. The folder is created
    here, with mkdir's atomic test, so jobs running at once never share one; the same job gets the same answer."""
    key = (str(sweep_dir), str(job_num))
    if key not in _TRIAL_DIRS:
        number = int(job_num)
        while True:
            try:
                (Path(key[0]) / str(number)).mkdir(parents=True)
                break
            except FileExistsError:
                number += 1
        _TRIAL_DIRS[key] = str(number)
    return _TRIAL_DIRS[key]


def _trial_seed(seed: Any, sweep_dir: Any) -> int:
    """hydra.sweeper.sampler.seed of conf/hparams_search: `seed` plus the number of trials already in the sweep
    directory, so that a continued search draws new trials rather than the first ones again (Optuna's samplers start
    their random stream afresh in every command), and the same command from the same state draws the same ones."""
    folder = Path(str(sweep_dir))
    done = sum(1 for p in folder.iterdir() if p.is_dir() and p.name.isdigit()) if folder.is_dir() else 0
    return int(seed) + done


def _register_resolvers() -> None:
    for name, function in (
        ("metalearn.run_dir", _run_dir),
        ("metalearn.output_subdir", _output_subdir),
        ("metalearn.direction", _direction),
        ("metalearn.optuna_storage", _optuna_storage),
        ("metalearn.trial_subdir", _trial_subdir),
        ("metalearn.trial_seed", _trial_seed),
    ):
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


def _job(cfg: DictConfig) -> float | None:
    """One run inside Hydra's job. Returns what a sweeper optimises: the best validation metric (the test metric
    in mode=eval). A failure is one `Error:` line on stderr, in metalearn.log and in the run's failed.json; a single
    run then exits with its code, while a job of a sweep returns None so the sweep goes on (metalearn.sweep says
    which jobs failed at the end; Optuna's sweeper records a FAIL trial, where NaN would end its search with a
    traceback). SIGINT / SIGTERM stop a sweep too, after the job's checkpoint."""
    from hydra.types import RunMode

    from metalearn.errors import RunDirError
    from metalearn.files import record_failure
    from metalearn.run import run  # imported here so --help stays fast
    from metalearn.training.interrupt import Interrupted, handle_signals

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    # the overrides as typed: `key=${...}` is text here, not an interpolation to resolve
    overrides = [str(o) for o in OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False)]  # type: ignore[union-attr]
    if hydra_cfg.mode == RunMode.MULTIRUN:
        _share_cpus(hydra_cfg)
    try:
        with handle_signals():
            results = run(cfg, run_dir, overrides, dict(hydra_cfg.runtime.choices))
    except Interrupted as exc:
        message = _interrupted_message(exc, cfg, run_dir)
        record_failure(run_dir, "interrupted", message, exc.exit_code, overrides)
        if _full_errors():
            raise
        print(message, file=sys.stderr, flush=True)
        logging.getLogger("metalearn.file").error(message)
        sys.exit(exc.exit_code)
    except Exception as exc:
        message, code = one_line(exc)
        if not isinstance(exc, RunDirError):  # a directory that is not ours gets nothing, not even the failure
            record_failure(run_dir, "failed", message, code, overrides)
        if _full_errors():
            raise
        print(f"Error: {message}", file=sys.stderr, flush=True)
        logging.getLogger("metalearn.file").error(message)
        if hydra_cfg.mode != RunMode.MULTIRUN:
            sys.exit(code)
        return None  # a failed trial to a sweeper; the next job runs
    _check_direction(hydra_cfg, str(results.get("metric")))
    if cfg.mode == "eval":  # Hydra's copy shows the command's config; record the checkpoint's, as used
        from metalearn.files import atomic_write

        used = OmegaConf.to_yaml(OmegaConf.create(results["config"]))
        atomic_write(run_dir / str(hydra_cfg.output_subdir) / "config.yaml", lambda handle: handle.write(used.encode()))
        return results["mean"]
    return results.get(f"best_val_{results['metric']}", results["mean"])


def _check_direction(hydra_cfg: DictConfig, metric: str) -> None:
    """Warn when an Optuna search (hydra.sweeper.direction) optimises this run's metric the wrong way."""
    direction = OmegaConf.select(hydra_cfg, "sweeper.direction", default=None)
    wanted = {"accuracy": "maximize", "mse": "minimize"}.get(metric)
    if isinstance(direction, str) and wanted and direction != wanted:
        logging.getLogger("metalearn").warning(
            f"hydra.sweeper.direction={direction}, but this run's metric is {metric}: the search needs "
            f"hydra.sweeper.direction={wanted}"
        )


def _share_cpus(hydra_cfg: DictConfig) -> None:
    """A job of a sweep takes its share of the CPUs, so that jobs running side by side do not oversubscribe them:
    hydra/launcher=joblib runs n_jobs at once (-1: one per CPU; joblib's workers also get OMP_NUM_THREADS = CPUs //
    n_jobs), a submitit or Ray launcher gives each job cpus_per_task or ray.remote.num_cpus. A thread count set in
    the environment (OMP_NUM_THREADS, MKL_NUM_THREADS) wins. Says what it chose in the job's log."""
    from metalearn.device import available_cpus, explicit_threads, limit_threads

    launcher = hydra_cfg.get("launcher") or {}
    target, cpus = str(launcher.get("_target_", "")), available_cpus()
    share, why = None, ""
    if target.endswith("JoblibLauncher"):
        n_jobs = int(launcher.get("n_jobs") or 1)
        at_once = max(1, cpus + 1 + n_jobs if n_jobs < 0 else n_jobs)  # joblib's meaning of a negative n_jobs
        share, why = cpus // at_once, f"{at_once} jobs at once on {cpus} CPUs"
    elif launcher.get("cpus_per_task"):
        share, why = int(launcher.cpus_per_task), f"hydra.launcher.cpus_per_task={launcher.cpus_per_task}"
    elif OmegaConf.select(launcher, "ray.remote.num_cpus"):
        num_cpus = int(OmegaConf.select(launcher, "ray.remote.num_cpus"))
        share, why = num_cpus, f"hydra.launcher.ray.remote.num_cpus={num_cpus}"
    threads = limit_threads(share)
    if share is None or threads != max(1, share):  # no share, or the environment's count won
        why = explicit_threads() or f"{cpus} CPUs"
    logging.getLogger("metalearn").info(f"torch threads: {threads} ({why})")


def _interrupted_message(exc: Any, cfg: DictConfig, run_dir: Path) -> str:
    from metalearn.training.resume import resume_command

    trained = (run_dir / "checkpoints" / "last.pt").is_file() and cfg.mode == "train"
    if exc.message:
        what = exc.message
    elif cfg.mode == "eval":
        what = "evaluation stopped; no results were written"
    else:
        what = "the final test was stopped after training" if trained else "stopped before any checkpoint was written"
    hint = f"; resume with: {resume_command(run_dir)}" if trained else ""
    return f"Interrupted by {exc.signal_name}: {what}{hint}"


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def train_app(cfg: DictConfig) -> float | None:
    """`metalearn ...`: meta-train, then test the best checkpoint."""
    return _job(cfg)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="eval")
def eval_app(cfg: DictConfig) -> float | None:
    """`metalearn mode=eval checkpoint=PATH ...`: score a checkpoint, composed from its own saved config."""
    return _job(cfg)


# --- Hydra's own errors (bad override syntax, unknown group option, unknown key), as one line ------------
# Hydra's plugins that metalearn's extras install: the config a plugin registers -> what it is, the extra
_PLUGIN_EXTRAS = {
    "hydra/sweeper/optuna": ("Hydra's Optuna sweeper (hparams_search=NAME uses it)", "sweeps"),
    "hydra/launcher/joblib": ("Hydra's joblib launcher", "sweeps"),
    "hydra/launcher/submitit_local": ("Hydra's submitit launcher", "slurm"),
    "hydra/launcher/submitit_slurm": ("Hydra's submitit launcher", "slurm"),
    "hydra/launcher/ray": ("Hydra's Ray launcher", "ray"),
    "hydra/launcher/ray_aws": ("Hydra's Ray launcher", "ray"),
}


def _missing_plugin(text: str) -> str | None:
    """A sweeper or launcher whose plugin is not installed (`Could not find 'hydra/launcher/joblib'`, or `Could not
    load` it from a preset such as hydra/launcher=slurm): which extra installs it."""
    found = re.search(r"Could not (?:find|load) '(hydra/(?:sweeper|launcher)/[^'/]+)'", text)
    if not found or found.group(1) not in _PLUGIN_EXTRAS:
        return None
    what, extra = _PLUGIN_EXTRAS[found.group(1)]
    preset = re.search(r"In '(hydra/(?:sweeper|launcher)/[^'/]+)': Could not load", text)
    group, _, option = (preset or found).group(1).rpartition("/")
    return f'{group}={option} needs {what}, which is not installed: pip install "metalearn[{extra}]"'


def _hydra_message(exc: BaseException) -> str:
    from hydra.errors import MissingConfigException, OverrideParseException

    text = str(exc)
    plugin = _missing_plugin(text)
    if plugin:
        return plugin
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

    multirun = "-m" in flags or "--multirun" in flags
    dirs = tuple(d for d in (flags.get("--config-dir"), flags.get("-cd")) if d)
    if multirun:
        for variant in _sweep_variants(overrides):
            _compose(variant, config_name, dirs)
        return
    cfg = _compose(overrides, config_name, dirs)
    if {"--cfg", "-c"} & set(flags):  # only prints the config: check it, take no directory
        from omegaconf import open_dict

        from metalearn.config import validate_config

        with open_dict(cfg):
            del cfg["hydra"]
        validate_config(cfg)
        return
    search = OmegaConf.select(cfg, "hydra.runtime.choices.hparams_search", default=None)
    if search is not None:  # without -m Hydra would make one run with the defaults and search nothing
        raise MetalearnError(
            f"hparams_search={search} is a search of many runs: add -m, as in metalearn -m {' '.join(overrides)}"
        )
    _take_run_dir(cfg)


def _sweep_variants(overrides: list[str], most: int = 64) -> list[list[str]]:
    """Override lists that between them use every value of every swept key once (the others at their first
    value), so that an unknown option or key anywhere in the sweep is found before its first job runs. Sweeps
    without a list of values (a sweeper's interval(...)) are left to the sweeper."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    values: list[list[str]] = []
    for override in parsed:
        if not override.is_sweep_override():
            values.append([override.input_line])
            continue
        try:
            key = override.get_key_element()
            values.append([f"{key}={value}" for value in override.sweep_string_iterator()])
        except Exception:  # not a list of values: the sweeper draws them
            values.append([])
    first = [options[0] for options in values if options]
    variants = [first]
    for index, options in enumerate(values):
        for option in options[1:]:
            variant = [o[0] if i != index else option for i, o in enumerate(values) if o]
            variants.append(variant)
    return variants[:most]


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
    if sys.argv[1:2] == ["report"]:  # `metalearn report DIR ...`: tables and figures of finished runs
        from metalearn.report import main as report

        sys.exit(report(sys.argv[2:]))
    _CHOSEN.clear()
    _TRIAL_DIRS.clear()
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
    from metalearn.sweep import sweep_failures

    if sweep_failures():  # the sweep went on past them; its summary has listed them
        sys.exit(1)
