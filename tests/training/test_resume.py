"""A run SIGKILLed at any point and resumed ends exactly like an uninterrupted run (CPU, deterministic).

The kills come from the METALEARN_TEST_KILL_AT hook (metalearn/training/faults.py), so each test
stops the process at the same point every time. Compared: every metrics.jsonl row (all fields but the
wall-clock elapsed_s), results.json's test metric, and the learner weights in best.pt and last.pt.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from tests.support import TINY, run_cli

pytestmark = pytest.mark.slow

# checkpoints at 3, 6, 8; validation at 3, 6, 8; rows at 2, 3, 4, 6, 8
BASE = [
    *TINY,
    "device.deterministic=true",
    "trainer.iterations=8",
    "trainer.val_interval=3",
    "trainer.log_interval=2",
    "trainer.checkpoint_interval=3",
]
ENV = {"OMP_NUM_THREADS": "1"}  # the same thread count in every process, so reductions match bitwise


def rows(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "elapsed_s"} for line in lines]


def test_metrics(run_dir: Path) -> dict:
    res = json.loads((run_dir / "results.json").read_text())
    kept = ("metric", "mean", "ci95", "episodes", "others", "iterations", "best_iteration")
    return {k: v for k, v in res.items() if k in kept or k.startswith("best_val_")}


test_metrics.__test__ = False  # a helper, not a test


def weights(path: Path) -> dict[str, torch.Tensor]:
    blob = torch.load(path, weights_only=True)
    return {"iteration": blob["iteration"], **blob["learner"]}


def assert_same_run(run_dir: Path, reference: Path) -> None:
    assert rows(run_dir) == rows(reference)
    assert test_metrics(run_dir) == test_metrics(reference)
    for name in ("best.pt", "last.pt"):
        got, want = weights(run_dir / "checkpoints" / name), weights(reference / "checkpoints" / name)
        assert got.keys() == want.keys()
        for key in want:
            assert torch.equal(torch.as_tensor(got[key]), torch.as_tensor(want[key])), (name, key)
    assert not list((run_dir / "checkpoints").glob(".*.tmp")), "a temporary checkpoint file was left behind"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    done = run_cli(*BASE, f"hydra.run.dir={run_dir}", env=ENV)
    assert done.returncode == 0, done.stderr
    assert [r["iteration"] for r in rows(run_dir)] == [2, 3, 4, 6, 8]
    return run_dir


def killed(run_dir: Path, point: str, *args: str) -> None:
    done = run_cli(*args, env={**ENV, "METALEARN_TEST_KILL_AT": point})
    assert done.returncode == -9, (point, done.returncode, done.stderr[-2000:])
    assert not (run_dir / "results.json").exists()


@pytest.mark.parametrize(
    "point, form",
    [
        ("iteration:5", "trainer.resume=yes"),  # mid-iteration: the row of iteration 4 follows the last checkpoint (3)
        ("validation:6", "resume=DIR"),  # during validation, before its row or best.pt
    ],
)
def test_sigkill_then_resume_matches_uninterrupted(tmp_path: Path, reference: Path, point: str, form: str) -> None:
    run_dir = tmp_path / "run"
    killed(run_dir, point, *BASE, f"hydra.run.dir={run_dir}")
    assert rows(run_dir)[-1]["iteration"] == 4  # a row after the last checkpoint, to be recomputed
    assert torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["iteration"] == 3
    # the resume command repeats none of the original overrides: they come from the checkpoint
    args = [form, f"hydra.run.dir={run_dir}"] if form.startswith("trainer.") else [f"resume={run_dir}"]
    (run_dir / "checkpoints" / ".last.pt.k1ll3d.tmp").write_bytes(b"half a checkpoint")  # as a SIGKILL mid-write leaves
    done = run_cli(*args, "trainer.progress=false", env=ENV)
    assert done.returncode == 0, done.stderr
    assert_same_run(run_dir, reference)
    # the original .hydra/ is kept; the resuming command's files go beside it
    assert "trainer.iterations=8" in (run_dir / ".hydra" / "overrides.yaml").read_text()
    (resumed,) = (run_dir / ".hydra").glob("resume-*")
    assert "trainer.progress=false" in yaml.safe_load((resumed / "overrides.yaml").read_text())


def test_sigterm_during_validation_checkpoints_and_resumes_exactly(tmp_path: Path, reference: Path) -> None:
    run_dir = tmp_path / "run"
    done = run_cli(*BASE, f"hydra.run.dir={run_dir}", env={**ENV, "METALEARN_TEST_SIGTERM_AT": "validation:6"})
    assert done.returncode == 143, done.stderr
    assert "Traceback" not in done.stderr
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith("Interrupted by SIGTERM: stopped after iteration 6 of 8")
    command = last_line.split("resume with: ")[1]
    assert command == f"metalearn resume={run_dir}"
    assert (
        torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["iteration"] == 6
    )  # the iteration finished
    assert not (run_dir / "results.json").exists()
    resumed = run_cli(*command.split()[1:], "trainer.progress=false", env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(run_dir, reference)


def test_killed_mid_row_then_mid_checkpoint_then_resumed(tmp_path: Path, reference: Path) -> None:
    """Two crashes in a row: half a metrics row on disk, then half a last.pt (after best.pt was renewed)."""
    run_dir = tmp_path / "run"
    killed(run_dir, "metrics:4", *BASE, f"hydra.run.dir={run_dir}")
    assert not (run_dir / "metrics.jsonl").read_text().endswith("\n")  # the torn row
    killed(run_dir, "checkpoint:6", f"resume={run_dir}/checkpoints/last.pt")
    last = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert last["iteration"] == 3  # the torn write never replaced the previous last.pt
    assert list((run_dir / "checkpoints").glob(".*.tmp"))  # what the SIGKILL left: ignored, never renamed
    done = run_cli(f"resume={run_dir}", "trainer.progress=false", env=ENV)
    assert done.returncode == 0, done.stderr
    for stale in (run_dir / "checkpoints").glob(".*.tmp"):
        stale.unlink()
    assert_same_run(run_dir, reference)


def assert_kill_and_resume_is_exact(tmp_path: Path, base: list[str], env: dict[str, str]) -> None:
    """A run of `base` killed at iteration 5 and resumed ends with the same bits as one run straight through."""
    reference = tmp_path / "reference"
    done = run_cli(*base, f"hydra.run.dir={reference}", env=env)
    assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "run"
    done = run_cli(*base, f"hydra.run.dir={run_dir}", env={**env, "METALEARN_TEST_KILL_AT": "iteration:5"})
    assert done.returncode == -9, done.stderr[-2000:]
    done = run_cli(f"resume={run_dir}", "trainer.progress=false", env=env)
    assert done.returncode == 0, done.stderr
    assert_same_run(run_dir, reference)


def test_maml_on_task_threads_resumes_exactly(tmp_path: Path) -> None:
    """batching=threads (auto's choice for Conv4 on a multi-core CPU): killed, resumed, the same bits."""
    env = {"OMP_NUM_THREADS": "2"}  # two workers, one task each at a time
    base = [*BASE, "algorithm=maml", "algorithm.batching=threads", "algorithm.eval_inner_steps=1"]
    assert_kill_and_resume_is_exact(tmp_path, base, env)


def test_baseline_pretraining_resumes_exactly(tmp_path: Path) -> None:
    """Mini-batch pre-training (sampler=batches) resumes mid-epoch with the same images in the same order."""
    base = [*BASE, "algorithm=baseline++", "sampler.batch_size=8", "algorithm.finetune_epochs=5"]
    assert_kill_and_resume_is_exact(tmp_path, base, ENV)
