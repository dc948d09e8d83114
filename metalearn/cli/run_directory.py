"""The run directory made this process's before Hydra writes into it: creatable and writable, holding no other
run's outputs (unless resuming it), claimed exclusively, with room for Hydra's .hydra/ and log."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from metalearn.errors import MetalearnError


def check_output_dir(path: Path) -> None:
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


def is_run(folder: Path) -> bool:
    """Whether `folder` is a metalearn run directory."""
    return any((folder / name).exists() for name in ("metrics.jsonl", "results.json", ".hydra"))


def take_run_dir(cfg: DictConfig) -> None:
    """Make the run's directory this process's before Hydra writes anything into it: writable, holding no other
    run's outputs (unless resuming it), and claimed exclusively (metalearn.files.claim) for as long as we run."""
    from metalearn.files import claim, claim_holder
    from metalearn.run import check_run_dir
    from metalearn.training.resume import wants_resume

    text = str(OmegaConf.select(cfg, "hydra.run.dir") or "").strip()
    if not text:
        raise MetalearnError("hydra.run.dir is empty; give the folder the run writes into, or leave the default")
    run_dir = Path(text)
    inside = next((p for p in run_dir.resolve().parents if p.name == "checkpoints" and is_run(p.parent)), None)
    if inside is not None:
        raise MetalearnError(
            f"hydra.run.dir={run_dir} is inside the checkpoints/ of the run in {inside.parent}; choose a folder "
            "outside any run"
        )
    check_output_dir(run_dir)
    resuming = cfg.get("mode") == "train" and wants_resume(cfg.get("resume"), cfg.trainer.get("resume"))
    check_run_dir(run_dir, resuming)
    try:
        claimed = claim(run_dir)
    except OSError as exc:  # e.g. a read-only file system, which os.access may not see
        raise unwritable(run_dir, exc) from None
    if not claimed:
        holder = claim_holder(run_dir)
        who = f"process {holder}" if holder and holder > 0 else "a process on another machine"
        raise MetalearnError(
            f"{run_dir} is in use by another metalearn run ({who}); wait for it to end or choose another "
            "hydra.run.dir=PATH"
        )
    check_hydra_files(run_dir, cfg)


def unwritable(run_dir: Path, exc: OSError) -> MetalearnError:
    where = exc.filename or run_dir
    return MetalearnError(f"cannot write {where}: {exc.strerror or exc}; choose another hydra.run.dir=PATH")


def check_hydra_files(run_dir: Path, cfg: DictConfig) -> None:
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
        raise unwritable(run_dir, exc) from None
