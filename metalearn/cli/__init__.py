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

import signal
import sys

from omegaconf import DictConfig, OmegaConf

from metalearn.cli.arguments import PRINT_ONLY, argv_problem, config_dirs, split_argv
from metalearn.cli.composition import compose, compose_config, config_dir, prepare, sweep_variants
from metalearn.cli.messages import fail, full_errors, hydra_message
from metalearn.cli.processes import fail_together, start_processes
from metalearn.cli.resolvers import CHOSEN, PENDING, TRIAL_DIRS
from metalearn.cli.run_directory import take_run_dir
from metalearn.errors import MetalearnError, RunEnded
from metalearn.launch import launch_from_env

__all__ = ["compose_config", "config_dir", "main", "prepare"]


def check_before_running(flags: dict[str, str | None], overrides: list[str], config_name: str) -> DictConfig | None:
    """Compose the config as Hydra will (the first value of each sweep in a multirun): what Hydra would report as a
    multi-line trace is one line here, before anything runs. Returns the config of a single run, whose output
    directory is still to be taken (take_run_dir); None for a sweep or a command that only prints the config."""

    multirun = "-m" in flags or "--multirun" in flags
    dirs = config_dirs(flags)
    if multirun:
        if launch_from_env().world_size > 1:
            raise MetalearnError(
                "a sweep (-m) cannot run inside torchrun or srun, which start every process of one run; make each "
                "job of the sweep a multi-process run with hydra/launcher=slurm and hydra.launcher.tasks_per_node"
            )
        for variant in sweep_variants(overrides):
            compose(variant, config_name, dirs)
        return None
    cfg = compose(overrides, config_name, dirs)
    if {"--cfg", "-c"} & set(flags):  # only prints the config: check it, take no directory
        from omegaconf import open_dict

        from metalearn.config import validate_config

        with open_dict(cfg):
            del cfg["hydra"]
        validate_config(cfg)
        return None
    search = OmegaConf.select(cfg, "hydra.runtime.choices.hparams_search", default=None)
    if search is not None:  # without -m Hydra would make one run with the defaults and search nothing
        raise MetalearnError(
            f"hparams_search={search} is a search of many runs: add -m, as in metalearn -m {' '.join(overrides)}"
        )
    return cfg


def one_message(exc: Exception) -> str:
    """The one line for an error of the command line or the config (Hydra's and OmegaConf's included); raises
    anything else (a bug), and everything with HYDRA_FULL_ERROR=1."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if full_errors() or not isinstance(exc, (HydraException, OmegaConfBaseException, MetalearnError)):
        raise exc
    cause = exc.__cause__ if isinstance(exc.__cause__, MetalearnError) else exc  # raised inside a resolver
    return str(cause) if isinstance(cause, MetalearnError) else hydra_message(exc)


def main() -> int:
    """The `metalearn` command; its exit status (the console script and `python -m metalearn` exit with it).
    Errors before the run starts end the process through messages.fail, with status 2."""
    if sys.argv[1:2] == ["report"]:  # `metalearn report DIR ...`: tables and figures of finished runs
        from metalearn.report import main as report

        return report(sys.argv[2:])
    CHOSEN.clear()
    TRIAL_DIRS.clear()
    argv = sys.argv[1:]
    flags, overrides = split_argv(argv)
    problem = argv_problem(argv)
    if problem:
        fail(problem, 2)
    if (PRINT_ONLY | {"--cfg", "-c"}) & set(flags) and hasattr(signal, "SIGPIPE"):
        # a command that only prints ends quietly when its reader goes, like any Unix filter (`--help | head -1`)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    launch = launch_from_env()
    if launch.world_size > 1 and {"--config-name", "-cn"} & set(flags):
        fail("several processes (torchrun, srun) run metalearn's own config; remove --config-name", 2)
    if launch.rank > 0:  # another process of this run: rank 0 takes the run directory and says what it is
        CHOSEN["run_dir"] = PENDING
    try:
        config_name = prepare(overrides)
        if {"--help", "-h"} & set(flags) and not {"--config-path", "-cp", "--config-name", "-cn"} & set(flags):
            from metalearn.cli.help import help_page

            print(help_page(overrides, config_name, config_dirs(flags), "--resolve" in flags))
            return 0
        cfg = None
        if not PRINT_ONLY & set(flags) and "--config-name" not in flags and "-cn" not in flags:
            cfg = check_before_running(flags, overrides, config_name)
        if cfg is not None and launch.world_size == 1:
            take_run_dir(cfg)
    except Exception as exc:
        if launch.world_size > 1:  # every process composes alike: rank 0 says it
            fail_together(one_message(exc), launch)
        fail(one_message(exc), 2)
    if cfg is not None and launch.world_size > 1:
        start_processes(cfg, launch, one_message)
    from metalearn.cli.apps import eval_app, train_app

    app = eval_app if config_name == "eval" else train_app
    try:
        app()
    except RunEnded as ended:  # a run that failed or was stopped, its message said
        return ended.exit_code
    except KeyboardInterrupt:  # Ctrl-C before the run's own handlers are in place (start-up, composition)
        if full_errors():
            raise
        print("Interrupted by SIGINT before the run started; nothing was written", file=sys.stderr, flush=True)
        return 130
    from metalearn.sweep import sweep_failures

    return 1 if sweep_failures() else 0  # a sweep goes on past failed jobs; its summary has listed them
