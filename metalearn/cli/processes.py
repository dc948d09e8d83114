"""The start of a run of several processes (torchrun, srun): they join one process group, rank 0 takes the run
directory (or says why it cannot), and the others learn from it where the run writes, before Hydra starts."""

from __future__ import annotations

import sys
from typing import Callable

from omegaconf import DictConfig, OmegaConf

from metalearn.cli.resolvers import CHOSEN
from metalearn.cli.run_directory import take_run_dir
from metalearn.config.groups.run import DeviceConfig
from metalearn.launch import Launch

DEFAULT_TIMEOUT_S = DeviceConfig.timeout_s  # until the config is composed


def collective_timeout(cfg: DictConfig) -> float:
    """device.timeout_s of a composed config, or its default where it is not a number (validation says so)."""
    try:
        return float(OmegaConf.select(cfg, "device.timeout_s", default=DEFAULT_TIMEOUT_S))
    except (TypeError, ValueError):
        return DEFAULT_TIMEOUT_S


def start_processes(cfg: DictConfig, launch: Launch, message: Callable[[Exception], str]) -> None:
    """Join the other processes of `launch` (collectives time out after device.timeout_s); rank 0 takes the run
    directory of the composed `cfg` and tells the others which it is, or that it failed (then every process ends,
    rank 0 with the one error line). `message` turns an exception into that line."""
    from metalearn.execution import ranks

    timeout_s = collective_timeout(cfg)
    problem = None
    if launch.rank == 0:
        try:
            take_run_dir(cfg)
        except Exception as exc:
            try:
                problem = message(exc)
            except Exception:  # not one of ours (a bug): still said once, and no process is left waiting
                problem = f"unexpected {type(exc).__name__}: {exc}"
    ranks.join(timeout_s)
    problem, run_dir = ranks.broadcast_object((problem, CHOSEN.get("run_dir")))
    if problem:
        fail_together(problem, launch)
    if launch.rank > 0:
        if run_dir is None:  # rank 0's was named on the command line, as this process's
            CHOSEN.pop("run_dir", None)
        else:
            CHOSEN["run_dir"] = run_dir


def fail_together(message: str, launch: Launch, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
    """End every process of `launch` on an error all of them found (or that rank 0 told them of): rank 0 prints
    the one line, and no process exits before it has (a launcher stops the others as soon as one exits)."""
    from metalearn.execution import ranks

    if launch.rank == 0:
        print(f"Error: {message}", file=sys.stderr, flush=True)
    ranks.join(timeout_s)
    ranks.end_together(ranks.agreed(RuntimeError(message)))
    sys.exit(2)
