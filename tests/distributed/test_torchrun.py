"""Runs of two processes (torchrun on the CPU, gloo) against one process with the same global meta-batch: the same
metrics.jsonl rows and results for protonet, maml, fomaml, reptile and maml_trpo; a run stopped at two processes
resumes at one with the same tasks; srun's variables and a submitit sweep of two-process jobs; one message, not a
hang, when a process fails or stops answering.

The setups are in setups.py; the algorithms train on two processes in one torchrun (algorithms_worker.py), the
rest through the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.distributed.setups import ALGORITHMS, SETUP
from tests.support import ROOT, run_inprocess

pytestmark = pytest.mark.slow

ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # as torchrun gives each of its processes


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(ROOT), **(extra or {})}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def torchrun(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "metalearn"]
    return subprocess.run(
        [*command, *args], cwd=ROOT, env=environment(env), capture_output=True, text=True, timeout=timeout
    )


def one_process(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "metalearn", *args], cwd=ROOT, env=environment(), capture_output=True, text=True
    )


def rows(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def assert_same_run(run: Path, reference: Path) -> None:
    """The same metrics rows (all but the time) and test results, to float32 rounding."""
    got, want = rows(run), rows(reference)
    assert [r["iteration"] for r in got] == [r["iteration"] for r in want]
    for a, b in zip(got, want):
        assert a.keys() == b.keys()
        for key in a.keys() - {"elapsed_s"}:
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), (a["iteration"], key)
    results, expected = (json.loads((d / "results.json").read_text()) for d in (run, reference))
    assert (results["mean"], results["ci95"], results["episodes"]) == pytest.approx(
        (expected["mean"], expected["ci95"], expected["episodes"]), rel=1e-5, abs=1e-6
    )


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(("Error:", "Interrupted"))]


_REFERENCES: dict[str, Path] = {}


@pytest.fixture
def reference(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - a function NAME -> run directory
    """The one-process run of an algorithm of ALGORITHMS (made once per session, in this process)."""

    def made(name: str) -> Path:
        if name not in _REFERENCES:
            run_dir = tmp_path_factory.mktemp(f"one-{name}") / "run"
            run_inprocess(run_dir, *ALGORITHMS[name])
            _REFERENCES[name] = run_dir
        return _REFERENCES[name]

    return made


def test_two_processes_train_and_test_as_one_does(reference, tmp_path: Path) -> None:  # noqa: ANN001
    worker = Path(__file__).with_name("algorithms_worker.py")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(worker)]
    done = subprocess.run(
        [*command, str(tmp_path)], cwd=ROOT, env=environment(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("\ntest ") + done.stdout.startswith("test ") == len(ALGORITHMS)  # rank 0 alone speaks
    for name in ALGORITHMS:
        assert_same_run(tmp_path / name, reference(name))
        # rank 0 alone writes
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["checkpoints", "metrics.jsonl", "results.json"]


def test_the_command_line_under_torchrun_scores_a_checkpoint_as_one_process_does(reference, tmp_path: Path) -> None:  # noqa: ANN001
    trained = reference("protonet")
    done = torchrun("mode=eval", f"checkpoint={trained / 'checkpoints' / 'best.pt'}", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 0, done.stderr[-3000:]
    scored, expected = (json.loads((d / "results.json").read_text()) for d in (tmp_path, trained))
    assert (scored["mean"], scored["ci95"]) == pytest.approx((expected["mean"], expected["ci95"]), abs=1e-6)
    # rank 0 alone speaks and writes: one result line, one set of Hydra's files
    assert done.stdout.count("test accuracy") == 1 and "x 2 processes" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hydra", "metalearn.log", "results.json"]


def test_a_run_stopped_at_two_processes_resumes_at_one_with_the_same_tasks(reference, tmp_path: Path) -> None:  # noqa: ANN001
    # a preemption's SIGTERM reaches rank 1 only: both ranks stop after the same iteration, with one checkpoint
    stopped = torchrun(
        *ALGORITHMS["protonet"],
        f"hydra.run.dir={tmp_path}",
        env={"METALEARN_TEST_RANK": "1", "METALEARN_TEST_SIGTERM_AT": "iteration:2"},
    )
    assert stopped.returncode != 0
    assert errors(stopped.stderr) == [
        f"Interrupted by SIGTERM: stopped after iteration 2 of 4; saved {tmp_path / 'checkpoints' / 'last.pt'}; "
        f"resume with: metalearn resume={tmp_path}"
    ]
    assert [r["iteration"] for r in rows(tmp_path)] == [1, 2]
    resumed = one_process(f"resume={tmp_path}")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(tmp_path, reference("protonet"))


def test_srun_tasks_meet_through_slurm_variables(reference, tmp_path: Path) -> None:  # noqa: ANN001
    """Two processes started as srun starts them: only SLURM's variables say which is which and where to meet."""
    job = {"SLURM_STEP_NUM_TASKS": "2", "SLURM_STEP_NODELIST": "localhost", "SLURM_JOB_ID": str(os.getpid())}
    command = [sys.executable, "-m", "metalearn", *ALGORITHMS["protonet"], f"hydra.run.dir={tmp_path}"]
    tasks = [
        subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment({**job, "SLURM_PROCID": str(r), "SLURM_LOCALID": str(r)}),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(2)
    ]
    outputs = [task.communicate(timeout=300) for task in tasks]
    assert [task.returncode for task in tasks] == [0, 0], outputs
    assert outputs[1] == ("", "")  # rank 1 says nothing
    assert_same_run(tmp_path, reference("protonet"))


def test_a_sweep_of_two_process_jobs(tmp_path: Path) -> None:
    """hydra/launcher=submitit_local with two tasks per job: each job of the sweep is itself a two-process run."""
    done = one_process(
        "-m", *SETUP, "seed=0,1", "hydra/launcher=submitit_local", "hydra.launcher.tasks_per_node=2",
        "hydra.launcher.cpus_per_task=1", f"hydra.sweep.dir={tmp_path}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for job in ("0", "1"):
        assert json.loads((tmp_path / job / "results.json").read_text())["status"] == "finished"
        assert "x 2 processes" in (tmp_path / job / "metalearn.log").read_text()


def test_a_stuck_process_ends_the_run_with_one_message_instead_of_a_hang(tmp_path: Path) -> None:
    done = torchrun(
        *SETUP, "device.timeout_s=3", f"hydra.run.dir={tmp_path}",
        env={"METALEARN_TEST_RANK": "1", "METALEARN_TEST_STALL_AT": "iteration:2"}, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert errors(done.stderr) == [
        "Error: rank 0 of 2: the other processes did not answer in time (device.timeout_s=3); one is stuck or has "
        "died without a word"
    ]


def test_a_failure_on_one_rank_is_said_once(tmp_path: Path) -> None:
    # rank 0 cannot write its checkpoint; rank 1, waiting for it, ends without a word
    done = torchrun(
        *SETUP, "trainer.checkpoint_interval=2", f"hydra.run.dir={tmp_path}",
        env={"METALEARN_TEST_RANK": "0", "METALEARN_TEST_FAIL_AT": "checkpoint:2"},
    )  # fmt: skip
    assert done.returncode != 0
    [line] = errors(done.stderr)
    assert line.startswith(f"Error: cannot write {tmp_path / 'checkpoints' / 'last.pt'} at iteration 2")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.iterationz=3", "Error: trainer.iterationz is not a known key"),  # composing, before joining
        ("sampler.tasks_per_batch=1", "Error: sampler.tasks_per_batch=1 cannot be split over 2 processes"),  # building
    ],
)
def test_a_mistake_every_process_finds_is_said_once(override: str, message: str, tmp_path: Path) -> None:
    done = torchrun(*SETUP, override, f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode != 0
    [line] = errors(done.stderr)
    assert line.startswith(message)
