"""Which process of a multi-process launch this one is, read from the launcher's environment variables: torchrun's
(RANK, WORLD_SIZE, LOCAL_RANK), a SLURM job step's (SLURM_PROCID, SLURM_STEP_NUM_TASKS, SLURM_LOCALID: srun, and
the tasks of hydra/launcher=slurm) or submitit's local tasks' (hydra/launcher=submitit_local). Without torch, so that
the command line can ask before anything heavy is imported; metalearn.execution.ranks joins the processes."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Mapping

from metalearn.errors import ConfigError


@dataclass(frozen=True)
class Launch:
    """This process's place among those a launcher started: its rank 0..world_size-1, its rank on its machine
    (local_rank: which GPU it takes) and the launcher that said so ("torchrun", "slurm", "submitit", or "" for a lone
    process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    launcher: str = ""


def launch_from_env(environ: Mapping[str, str] = os.environ) -> Launch:
    """torchrun's RANK / WORLD_SIZE / LOCAL_RANK; else the task variables of a SLURM job step of more than one task
    (srun, or the tasks submitit starts); else those of submitit's local tasks; else a lone process. A batch
    script's own shell (no step) is a lone process, so a command there does not wait for tasks that never come."""
    if environ.get("RANK") is not None and environ.get("WORLD_SIZE") is not None:
        return Launch(int(environ["RANK"]), int(environ["WORLD_SIZE"]), int(environ.get("LOCAL_RANK") or 0), "torchrun")
    for launcher, (tasks, rank, local) in _TASK_VARIABLES.items():
        count = int(environ.get(tasks) or 1)
        if count > 1 and environ.get(rank) is not None:
            return Launch(int(environ[rank]), count, int(environ.get(local) or 0), launcher)
    return Launch()


# the launchers that set a task's place in variables of their own: (tasks, rank, rank on the machine)
_TASK_VARIABLES = {
    "slurm": ("SLURM_STEP_NUM_TASKS", "SLURM_PROCID", "SLURM_LOCALID"),
    "submitit": ("SUBMITIT_LOCAL_NTASKS", "SUBMITIT_LOCAL_GLOBALID", "SUBMITIT_LOCAL_LOCALID"),
}


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list: `gpu[07-09,12],cpu1` -> gpu07, `a,b` -> a, `n[1-2]-ib` -> n1-ib."""
    match = re.match(r"([^,\[]+)(?:\[([^\]]+)\]([^,]*))?", nodelist.strip())
    if match is None:
        raise ConfigError(f"cannot read the first host of the SLURM node list {nodelist!r}")
    prefix, ranges, suffix = match.groups()
    if ranges is None:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0] + suffix


def rendezvous(launch: Launch, environ: Mapping[str, str] = os.environ) -> tuple[str, int]:
    """MASTER_ADDR and MASTER_PORT where the processes of `launch` meet: those set (torchrun sets them); else, in a
    SLURM step, the step's first host, and for submitit's local tasks this machine; the port derived from the job
    (and step) id, so that the processes agree on it without talking and two runs sharing a node do not collide."""
    if launch.launcher == "slurm":
        nodes = environ.get("SLURM_STEP_NODELIST") or environ.get("SLURM_JOB_NODELIST") or environ.get("SLURM_NODELIST")
        addr = first_host(nodes) if nodes else "127.0.0.1"
        job = _number(environ.get("SLURM_JOB_ID")) * 7 + _number(environ.get("SLURM_STEP_ID"))
    else:
        addr, job = "127.0.0.1", _number(environ.get("SUBMITIT_LOCAL_JOB_ID"))
    addr = environ.get("MASTER_ADDR") or addr
    return addr, int(environ.get("MASTER_PORT") or 20000 + job % 20000)


def _number(text: str | None) -> int:
    """The digits of an id such as 1234 or 1234_7 as a number (0 if none)."""
    digits = re.sub(r"\D", "", text or "")
    return int(digits) if digits else 0
