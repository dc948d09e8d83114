"""Meta-RL from the command line: a run writes the returns after each adaptation step, and a run killed mid-way and
resumed ends with the same bits as one run straight through (tasks, rollout noise and TRPO steps included)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import run_cli
from tests.training.test_resume import assert_kill_and_resume_is_exact

pytestmark = pytest.mark.slow

SMALL = [
    "experiment=maml_trpo_navigation2d",
    "dataset.horizon=10",
    "sampler.tasks_per_batch=3",
    "sampler.trajectories=3",
    "sampler.eval_trajectories=4",
    "sampler.val_tasks=3",
    "sampler.test_tasks=4",
    "model.hidden_sizes=[8,8]",
    "algorithm.cg_iterations=3",
    "device.deterministic=true",
    "trainer.iterations=8",
    "trainer.val_interval=3",
    "trainer.log_interval=2",
    "trainer.checkpoint_interval=3",
]


def test_navigation_run_resumes_exactly_and_reports_the_adaptation_curve(tmp_path: Path) -> None:
    assert_kill_and_resume_is_exact(tmp_path, SMALL, {"OMP_NUM_THREADS": "1"})
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["metric"] == "return" and results["episodes"] == 4 and results["algorithm"] == "maml_trpo"
    curve = [results["others"][f"return_after_{k}_steps"]["mean"] for k in range(4)]
    assert results["mean"] == curve[-1] and all(r < 0 for r in curve)
    assert "test return" in results["summary"] and "return_after_0_steps" in results["summary"]
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {"train_return_before", "train_return_after", "train_kl"} <= rows[0].keys()
    assert {"val_return", "val_return_after_0_steps"} <= rows[1].keys()


def test_bandit_run_reports_the_regret_and_keeps_the_checkpoint_of_least_regret(tmp_path: Path) -> None:
    run = tmp_path / "bandit"
    small = ["sampler.tasks_per_batch=4", "sampler.val_tasks=4", "sampler.test_tasks=6", "model.hidden_sizes=[8]"]
    every = ["trainer.iterations=4", "trainer.val_interval=1", "trainer.log_interval=1", "trainer.progress=false"]
    done = run_cli("experiment=maml_trpo_bandit", *small, *every, f"hydra.run.dir={run}")
    assert done.returncode == 0, done.stderr
    results = json.loads((run / "results.json").read_text())
    assert results["metric"] == "regret" and results["episodes"] == 6
    assert results["mean"] == results["others"]["regret_after_3_steps"]["mean"]
    assert {f"return_after_{k}_steps" for k in range(4)} <= results["others"].keys()
    assert "test regret" in results["summary"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    validation = {row["iteration"]: row["val_regret"] for row in rows if "val_regret" in row}
    assert {"train_regret_before", "train_regret_after"} <= rows[0].keys() and len(validation) == 4
    assert results["best_iteration"] == min(validation, key=validation.get)  # lower is better
    assert results["best_val_regret"] == min(validation.values())
