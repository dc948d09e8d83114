"""One run inside Hydra's job: what it returns to a sweeper, how its failures and interruptions end, and the
CPUs it takes when it runs beside other jobs of a sweep."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from metalearn.cli.messages import full_errors
from metalearn.errors import RunEnded, one_line


def job(cfg: DictConfig) -> float | None:
    """One run inside Hydra's job. Returns what a sweeper optimises: the best validation metric (the test metric
    in mode=eval). A failure is one `Error:` line on stderr, in metalearn.log and in the run's failed.json; a single
    run then ends with its code (RunEnded, which the entry point returns), while a job of a sweep returns None so
    the sweep goes on (metalearn.sweep says which jobs failed at the end; Optuna's sweeper records a FAIL trial,
    where NaN would end its search with a traceback). SIGINT / SIGTERM stop a sweep too (RunEnded), after the job's
    checkpoint."""
    from hydra.types import RunMode

    from metalearn.cli.processes import collective_timeout
    from metalearn.errors import RunDirError
    from metalearn.execution import ranks
    from metalearn.files import record_failure
    from metalearn.run import run  # imported here so --help stays fast
    from metalearn.training.interrupt import Interrupted, handle_signals

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    # the overrides as typed: `key=${...}` is text here, not an interpolation to resolve
    overrides = [str(o) for o in OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False)]  # type: ignore[union-attr]
    if hydra_cfg.mode == RunMode.MULTIRUN:
        share_cpus(hydra_cfg)
    timeout_s = collective_timeout(cfg)
    try:
        with handle_signals():
            # a job of several processes (torchrun, srun, a SLURM launcher's tasks): rank 0 speaks and writes
            joined = ranks.join(timeout_s)
            if not ranks.is_primary():  # the other processes say nothing but errors
                for name in ("metalearn", ""):
                    logging.getLogger(name).setLevel(logging.ERROR)
                warnings.filterwarnings("ignore")
            results = run(cfg, run_dir, overrides, dict(hydra_cfg.runtime.choices))
    except Interrupted as exc:  # every process got the signal, or agreed to stop on one's: rank 0 says so
        message = interrupted_message(exc, cfg, run_dir)
        if ranks.is_primary():
            record_failure(run_dir, "interrupted", message, exc.exit_code, overrides)
        if full_errors():
            raise
        if ranks.is_primary():
            print(message, file=sys.stderr, flush=True)
            logging.getLogger("metalearn.file").error(message)
        ranks.end_together(exc)
        raise RunEnded(exc.exit_code) from None
    except Exception as exc:
        stated = ranks.collective_failure(exc, timeout_s)  # "" unless a collective failed
        if getattr(exc, "quiet", False) or stated is None:  # another process failed and says why
            ranks.end_together(exc)
            if full_errors():
                raise
            if hydra_cfg.mode != RunMode.MULTIRUN:
                raise RunEnded(1) from None
            return None  # as any failed job of a sweep: the sweep goes on
        message, code = (stated, 1) if stated else one_line(exc)
        if ranks.rank() > 0 and not stated:  # a failure of one process other than rank 0: say which
            message = f"rank {ranks.rank()} of {ranks.world_size()}: {message}"
        if not isinstance(exc, RunDirError):  # a directory that is not ours gets nothing, not even the failure
            record_failure(run_dir, "failed", message, code, overrides)
        if full_errors():
            raise
        print(f"Error: {message}", file=sys.stderr, flush=True)
        logging.getLogger("metalearn.file").error(message)
        ranks.end_together(exc)
        if hydra_cfg.mode != RunMode.MULTIRUN:
            raise RunEnded(code) from None
        return None  # a failed trial to a sweeper; the next job runs
    primary = ranks.is_primary()
    if joined:
        ranks.leave()
    if primary:
        check_direction(hydra_cfg, str(results.get("metric")))
    if cfg.mode == "eval" and primary:  # Hydra's copy shows the command's config; record the one used
        from metalearn.files import atomic_write

        used = OmegaConf.to_yaml(OmegaConf.create(results["config"]))
        atomic_write(run_dir / str(hydra_cfg.output_subdir) / "config.yaml", lambda handle: handle.write(used.encode()))
        return results["mean"]
    return results.get(f"best_val_{results['metric']}", results["mean"])


def check_direction(hydra_cfg: DictConfig, metric: str) -> None:
    """Warn when an Optuna search (hydra.sweeper.direction) optimises this run's metric the wrong way."""
    direction = OmegaConf.select(hydra_cfg, "sweeper.direction", default=None)
    wanted = {"accuracy": "maximize", "mse": "minimize"}.get(metric)
    if isinstance(direction, str) and wanted and direction != wanted:
        logging.getLogger("metalearn").warning(
            f"hydra.sweeper.direction={direction}, but this run's metric is {metric}: the search needs "
            f"hydra.sweeper.direction={wanted}"
        )


def share_cpus(hydra_cfg: DictConfig) -> None:
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


def interrupted_message(exc: Any, cfg: DictConfig, run_dir: Path) -> str:
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
