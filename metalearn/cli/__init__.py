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

from omegaconf import OmegaConf

from metalearn.cli.arguments import PRINT_ONLY, argv_problem, config_dirs, split_argv
from metalearn.cli.composition import compose, compose_config, config_dir, prepare, sweep_variants
from metalearn.cli.messages import fail, full_errors, hydra_message
from metalearn.cli.resolvers import CHOSEN, TRIAL_DIRS
from metalearn.cli.run_directory import take_run_dir
from metalearn.errors import MetalearnError

__all__ = ["compose_config", "config_dir", "main", "prepare"]


def check_before_running(flags: dict[str, str | None], overrides: list[str], config_name: str) -> None:
    """Compose the config as Hydra will (the first value of each sweep in a multirun) and check the run's
    output directory: what Hydra would report as a multi-line trace is one line here, before anything runs."""

    multirun = "-m" in flags or "--multirun" in flags
    dirs = config_dirs(flags)
    if multirun:
        for variant in sweep_variants(overrides):
            compose(variant, config_name, dirs)
        return
    cfg = compose(overrides, config_name, dirs)
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
    take_run_dir(cfg)


def main() -> None:
    if sys.argv[1:2] == ["report"]:  # `metalearn report DIR ...`: tables and figures of finished runs
        from metalearn.report import main as report

        sys.exit(report(sys.argv[2:]))
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
    try:
        config_name = prepare(overrides)
        if {"--help", "-h"} & set(flags) and not {"--config-path", "-cp", "--config-name", "-cn"} & set(flags):
            from metalearn.cli.help import help_page

            print(help_page(overrides, config_name, config_dirs(flags), "--resolve" in flags))
            return
        if not PRINT_ONLY & set(flags) and "--config-name" not in flags and "-cn" not in flags:
            check_before_running(flags, overrides, config_name)
    except Exception as exc:
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException

        if full_errors() or not isinstance(exc, (HydraException, OmegaConfBaseException, MetalearnError)):
            raise
        cause = exc.__cause__ if isinstance(exc.__cause__, MetalearnError) else exc  # raised inside a resolver
        message = str(cause) if isinstance(cause, MetalearnError) else hydra_message(exc)
        fail(message, 2)
    from metalearn.cli.apps import eval_app, train_app

    app = eval_app if config_name == "eval" else train_app
    try:
        app()
    except KeyboardInterrupt:  # Ctrl-C before the run's own handlers are in place (start-up, composition)
        if full_errors():
            raise
        print("Interrupted by SIGINT before the run started; nothing was written", file=sys.stderr, flush=True)
        sys.exit(130)
    from metalearn.sweep import sweep_failures

    if sweep_failures():  # the sweep went on past them; its summary has listed them
        sys.exit(1)
