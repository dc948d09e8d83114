"""The resolvers of conf/app.yaml and conf/hparams_search: where a run (a resumed one too) and a search's trials
write, and which way a search optimises."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from metalearn.errors import MetalearnError

CHOSEN: dict[str, str] = {}  # the default run directory this process took (Hydra composes twice: same answer)
PENDING = "<the run directory of rank 0>"  # what other processes of a multi-process run compose with, at first


def choose_run_dir(resume: Any, default: str) -> str:
    """hydra.run.dir: the run directory of `resume=PATH` (PATH, or RUN for RUN/checkpoints/NAME.pt); else `default`
    (outputs/DATE/TIME), or DEFAULT-1, DEFAULT-2, ... when another run took it in the same second: the folder is
    claimed here (metalearn.files.claim), so two runs never share it."""
    if resume not in (None, "", "null"):
        from metalearn.training.resume import run_dir_of

        return str(run_dir_of(str(resume)))
    if "run_dir" in CHOSEN:
        return CHOSEN["run_dir"]
    from metalearn.files import claim

    for n in range(1000):
        candidate = default if n == 0 else f"{default}-{n}"
        try:
            taken = claim(Path(candidate))
        except OSError:  # not creatable: the check before running says why
            return candidate
        if taken:
            CHOSEN["run_dir"] = candidate
            return candidate
    raise MetalearnError(f"{default} and 999 folders beside it are in use; choose another with hydra.run.dir=PATH")


def output_subdir(resume: Any, trainer_resume: Any) -> str | None:
    """hydra.output_subdir: a resumed run keeps its original .hydra/; the resuming command's files go beside them.
    None (no files) for the processes of a multi-process run other than rank 0."""
    from metalearn.launch import launch_from_env
    from metalearn.training.resume import wants_resume

    if launch_from_env().rank > 0:  # of several processes of a run, only rank 0 writes Hydra's files
        return None
    if not wants_resume(resume, trainer_resume):
        return ".hydra"
    return f".hydra/resume-{datetime.now().strftime('%Y-%m-%d_%H-%M-%S')}"


def direction(target: Any) -> str:
    """hydra.sweeper.direction of conf/hparams_search: "minimize" when the data set `target` (dataset._target_) is
    regression (its `task`; the metric is MSE), else "maximize" (accuracy)."""
    from hydra.utils import get_object

    try:
        task = getattr(get_object(str(target)), "task", None)
    except Exception:  # not importable: composing the job says so
        task = None
    return "minimize" if task == "regression" else "maximize"


def optuna_storage(sweep_dir: Any) -> str:
    """hydra.sweeper.storage of conf/hparams_search: an SQLite file in the sweep directory, which is created here:
    Optuna's sweeper opens its storage before Hydra's launcher creates the directory, and SQLite creates no
    folders. An absolute path, so that the study is found wherever the command runs from."""
    folder = Path(str(sweep_dir)).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'optuna.db'}"


TRIAL_DIRS: dict[tuple[str, str], str] = {}  # (sweep dir, job number) -> the folder name this process gave it


def trial_subdir(sweep_dir: Any, job_num: Any) -> str:
    """hydra.sweep.subdir of conf/hparams_search: the job's number or, when that folder is taken (a search continued
    in its sweep directory numbers its jobs from 0 again), the first free number after it. The folder is created
    here, with mkdir's atomic test, so jobs running at once never share one; the same job gets the same answer."""
    key = (str(sweep_dir), str(job_num))
    if key not in TRIAL_DIRS:
        number = int(job_num)
        while True:
            try:
                (Path(key[0]) / str(number)).mkdir(parents=True)
                break
            except FileExistsError:
                number += 1
        TRIAL_DIRS[key] = str(number)
    return TRIAL_DIRS[key]


def trial_seed(seed: Any, sweep_dir: Any) -> int:
    """hydra.sweeper.sampler.seed of conf/hparams_search: `seed` plus the number of trials already in the sweep
    directory, so that a continued search draws new trials rather than the first ones again (Optuna's samplers start
    their random stream afresh in every command), and the same command from the same state draws the same ones."""
    folder = Path(str(sweep_dir))
    done = sum(1 for p in folder.iterdir() if p.is_dir() and p.name.isdigit()) if folder.is_dir() else 0
    return int(seed) + done


def register_resolvers() -> None:
    for name, function in (
        ("metalearn.run_dir", choose_run_dir),
        ("metalearn.output_subdir", output_subdir),
        ("metalearn.direction", direction),
        ("metalearn.optuna_storage", optuna_storage),
        ("metalearn.trial_subdir", trial_subdir),
        ("metalearn.trial_seed", trial_seed),
    ):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function, use_cache=True)
