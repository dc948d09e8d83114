"""A run owns its directory: it is claimed before anything is written, a refused run writes nothing, and two
runs never share a directory (issue: nothing lost, nothing written where it should not be)."""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

import pytest

from metalearn.cli import resolvers
from metalearn.files import CLAIM_FILE, claim, claim_holder, release
from tests.support import TINY, run_cli


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def hold(folder: Path, pid: int) -> None:
    """Make `folder` look claimed by process `pid` on this machine."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CLAIM_FILE).write_text(f"{pid} {platform.node()}\n")


def test_claim_is_exclusive_and_a_dead_holders_claim_is_taken_over(tmp_path: Path) -> None:
    held, stale, free = tmp_path / "held", tmp_path / "stale", tmp_path / "free"
    hold(held, os.getppid())  # a live process that is not this one
    assert claim_holder(held) == os.getppid() and not claim(held)
    hold(stale, 2**22 + 12345)  # beyond any pid in use here: a process that died
    assert claim_holder(stale) is None and claim(stale)
    assert (stale / CLAIM_FILE).read_text().split()[0] == str(os.getpid())
    assert claim(free) and claim(free)  # taking it twice is fine for its holder
    release(free)
    assert not (free / CLAIM_FILE).exists() and claim_holder(free) is None
    release(stale)


def test_a_default_run_directory_taken_in_the_same_second_gets_a_suffix(tmp_path: Path) -> None:
    default = tmp_path / "outputs" / "2026-12-01" / "06-40-00"
    hold(default, os.getppid())
    resolvers.CHOSEN.clear()
    try:
        chosen = resolvers.choose_run_dir(None, str(default))
        assert chosen == f"{default}-1"
        assert resolvers.choose_run_dir(None, str(default)) == chosen  # the same answer twice
        assert claim_holder(Path(chosen)) == os.getpid()
    finally:
        release(Path(f"{default}-1"))
        resolvers.CHOSEN.clear()


@pytest.mark.slow
def test_a_refused_run_leaves_the_other_runs_directory_untouched(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    done = run_cli(*TINY, "trainer.iterations=2", f"hydra.run.dir={run_dir}")
    assert done.returncode == 0, done.stderr
    before = digest(run_dir)
    refused = run_cli(*TINY, "trainer.iterations=2", "trainer.lr=0.5", f"hydra.run.dir={run_dir}")
    assert refused.returncode == 2 and "already holds a run's outputs" in refused.stderr
    evaluated = run_cli("mode=eval", f"checkpoint={run_dir / 'checkpoints' / 'best.pt'}", f"hydra.run.dir={run_dir}")
    assert evaluated.returncode == 2 and "already holds a run's outputs" in evaluated.stderr
    assert digest(run_dir) == before  # .hydra/config.yaml and overrides.yaml included
    assert not (run_dir / CLAIM_FILE).exists()  # each process released its claim at exit


def test_a_directory_in_use_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    run_dir = tmp_path / "busy"
    hold(run_dir, os.getpid())  # as if this process were a run in progress there
    refused = run_cli(*TINY, "trainer.iterations=2", f"hydra.run.dir={run_dir}")
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip().startswith(
        f"Error: {run_dir} is in use by another metalearn run (process {os.getpid()})"
    )
    assert sorted(p.name for p in run_dir.iterdir()) == [CLAIM_FILE]


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["hydra.run.dir="], {}, "Error: hydra.run.dir is empty"),
        (["hydra.run.dir=''"], {}, "Error: hydra.run.dir is empty"),
        ([], {"METALEARN_CACHE": ""}, "Error: METALEARN_CACHE is set but empty"),
    ],
)
def test_empty_paths_are_refused(tmp_path: Path, args: list[str], env: dict[str, str], message: str) -> None:
    run_dir = [] if args else [f"hydra.run.dir={tmp_path / 'run'}"]
    done = run_cli(*TINY, "trainer.iterations=1", *run_dir, *args, cwd=tmp_path, env=env)
    assert done.returncode == 2 and done.stderr.strip().startswith(message), done.stderr
    assert not (tmp_path / "metrics.jsonl").exists() and not list(tmp_path.glob("*.pt"))


def test_a_run_directory_inside_another_runs_checkpoints_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other"
    (other / "checkpoints").mkdir(parents=True)
    (other / "metrics.jsonl").write_text("")
    done = run_cli(*TINY, f"hydra.run.dir={other / 'checkpoints' / 'run'}")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().startswith(
        f"Error: hydra.run.dir={other / 'checkpoints' / 'run'} is inside the checkpoints/"
    )
    assert sorted(p.name for p in (other / "checkpoints").iterdir()) == []
