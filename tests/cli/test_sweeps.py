"""Sweeps survive a failing job; every run says where its outputs are; mode=eval records the config it used."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.support import TINY, run_cli


def test_a_sweep_with_a_failing_job_finishes_the_others_and_lists_it(tmp_path: Path) -> None:
    """A 2x2 sweep whose k_shot=30 jobs cannot run (a class of this data set has 20 images): the other two
    finish, each failure is recorded in its own directory, and the command lists them and exits 1."""
    sweep = tmp_path / "sweep"
    done = run_cli("-m", *TINY, "trainer.iterations=2", "sampler.k_shot=1,30", "seed=0,1", f"hydra.sweep.dir={sweep}")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    finished = sorted(p.parent.name for p in sweep.glob("*/results.json"))
    failed = sorted(p.parent.name for p in sweep.glob("*/failed.json"))
    assert finished == ["0", "1"] and failed == ["2", "3"]
    record = json.loads((sweep / "2" / "failed.json").read_text())
    assert record["status"] == "failed" and record["exit_code"] == 2
    assert record["error"].startswith("sampler.k_shot + sampler.q_query = 30 + 3 is too large")
    assert "sampler.k_shot=30" in record["overrides"] and "seed=0" in record["overrides"]
    assert record["error"] in (sweep / "2" / "metalearn.log").read_text()  # the error line is in the log too
    summary = done.stderr[done.stderr.index("sweep of 4 jobs") :].splitlines()
    assert summary[0] == f"sweep of 4 jobs in {sweep}: 2 finished, 2 failed"
    assert summary[1].startswith(f"  failed: {sweep / '2'} (") and summary[2].startswith(f"  failed: {sweep / '3'} (")
    assert summary[3] == f"table and plots: metalearn report {sweep}"


def test_a_run_says_where_its_outputs_are_and_eval_takes_a_run_directory(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    done = run_cli(*TINY, "trainer.iterations=2", f"hydra.run.dir={run_dir}")
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if line]
    assert said[0] == f"run directory: {run_dir}"
    assert said[1] == (
        "training: algorithm=protonet dataset=glyphs model=conv4 on cpu, tasks run by: one batched pass per episode"
    )
    assert said[-2:] == [f"results: {run_dir / 'results.json'}", f"best checkpoint: {run_dir / 'checkpoints/best.pt'}"]
    log = (run_dir / "metalearn.log").read_text()
    assert all(line in log for line in said)  # the same lines, with their times, in metalearn.log
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "finished" and results["choices"]["algorithm"] == "protonet"
    assert results["config"]["sampler"]["q_query"] == 3 and results["config"]["trainer"]["iterations"] == 2

    # checkpoint=RUN_DIR reads its checkpoints/best.pt; the eval run's .hydra/config.yaml is what it used
    scored = run_cli("mode=eval", f"checkpoint={run_dir}", "sampler.test_episodes=6", f"hydra.run.dir={tmp_path / 'e'}")
    assert scored.returncode == 0, scored.stderr
    assert f"evaluating {run_dir / 'checkpoints/best.pt'}" in scored.stderr
    used = yaml.safe_load((tmp_path / "e" / ".hydra" / "config.yaml").read_text())
    assert used["sampler"]["q_query"] == 3 and used["sampler"]["test_episodes"] == 6  # the checkpoint's, and ours
    assert used["dataset"]["image_size"] == 16 and used["model"]["hidden_channels"] == 8
    evaluated = json.loads((tmp_path / "e" / "results.json").read_text())
    assert evaluated["checkpoint"] == str(run_dir / "checkpoints" / "best.pt") and evaluated["episodes"] == 6


def test_the_job_returns_the_best_validation_metric_to_a_sweeper(tmp_path: Path) -> None:
    """What Hydra's sweepers (Optuna) optimise: the best validation score, None for a failed job of a sweep (a FAIL
    trial to Optuna; NaN would end its search)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from metalearn.cli import composition
    from metalearn.cli.job import job as run_job

    def job(folder: Path, *overrides: str) -> float | None:
        """metalearn.cli.job.job as a job of a sweep would call it, writing into `folder`."""
        args = [*TINY, "trainer.iterations=2", *overrides]
        hydra_cfg = composition.compose(args, "config").hydra
        hydra_cfg.runtime.output_dir, hydra_cfg.mode = str(folder), RunMode.MULTIRUN
        HydraConfig.instance().set_config(OmegaConf.create({"hydra": hydra_cfg}))
        return run_job(composition.compose_config(args)[0])

    value = job(tmp_path / "r")
    assert value == json.loads((tmp_path / "r" / "results.json").read_text())["best_val_accuracy"]
    assert job(tmp_path / "bad", "sampler.k_shot=30") is None  # recorded, not raised: the sweep goes on
    assert json.loads((tmp_path / "bad" / "failed.json").read_text())["status"] == "failed"


def test_cfg_job_checks_the_values_it_prints() -> None:
    bad = run_cli("--cfg", "job", "trainer.lr=abc")
    assert bad.returncode == 2 and bad.stderr.strip() == "Error: trainer.lr='abc' is invalid: expected float"
    good = run_cli("--cfg", "job", "sampler.n_way=3")
    assert good.returncode == 0 and yaml.safe_load(good.stdout)["sampler"]["n_way"] == 3
