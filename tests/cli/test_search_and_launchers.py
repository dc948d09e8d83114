"""Hyper-parameter search (conf/hparams_search, Hydra's Optuna sweeper) and launchers (joblib, submitit, presets for
SLURM and Ray): real sweeps in subprocesses, on the tiny preset."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from metalearn import cli
from metalearn.cli import composition, messages, resolvers
from metalearn.cli.job import share_cpus
from metalearn.device import THREAD_VARIABLES, available_cpus
from tests.support import ROOT, TINY, run_cli

FAST = [*TINY, "trainer.iterations=2", "sampler.test_episodes=5"]


@pytest.fixture
def no_thread_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """No thread count in the environment (it would win over a launcher's share), here and in subprocesses."""
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _threads(job: Path) -> tuple[int, str]:
    """The thread count a job of a sweep logged, and why."""
    found = re.search(r"torch threads: (\d+) \(([^)]*)\)", (job / "metalearn.log").read_text())
    assert found, f"no thread line in {job / 'metalearn.log'}"
    return int(found.group(1)), found.group(2)


# --- launchers ----------------------------------------------------------------------------------------------
def test_a_joblib_sweep_runs_its_jobs_side_by_side_on_their_share_of_the_cpus(
    tmp_path: Path, no_thread_variables: None
) -> None:
    sweep = tmp_path / "sweep"
    done = run_cli(
        "-m", *FAST, "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}"
    )
    assert done.returncode == 0, done.stderr
    assert f"sweep of 2 jobs in {sweep}: 2 finished, 0 failed" in done.stderr
    for job in (sweep / "0", sweep / "1"):
        assert json.loads((job / "results.json").read_text())["status"] == "finished"
        threads, _ = _threads(job)
        assert 2 * threads <= max(2, available_cpus())  # two jobs at once never ask for more threads than CPUs


def test_a_submitit_local_sweep_finishes_with_cpus_per_task_threads(tmp_path: Path, no_thread_variables: None) -> None:
    sweep = tmp_path / "sweep"
    done = run_cli(
        "-m", *FAST, "seed=0,1", "hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.timeout_min=5", f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"sweep of 2 jobs in {sweep}: 2 finished, 0 failed" in done.stderr
    for job in (sweep / "0", sweep / "1"):
        assert (job / "results.json").is_file()
        assert _threads(job) == (1, "hydra.launcher.cpus_per_task=1")


@pytest.mark.parametrize(
    ("launcher", "n_jobs", "cpus_per_task", "expected"),
    [
        ("hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", 2, None, lambda cpus: cpus // 2),
        ("hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", -1, None, lambda cpus: 1),
        ("hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher", None, 1, lambda cpus: 1),
    ],
)
def test_a_job_of_a_sweep_takes_its_share_of_the_cpus_unless_the_environment_sets_it(
    monkeypatch: pytest.MonkeyPatch, no_thread_variables: None, launcher, n_jobs, cpus_per_task, expected
) -> None:
    hydra_cfg = OmegaConf.create({"launcher": {"_target_": launcher, "n_jobs": n_jobs, "cpus_per_task": cpus_per_task}})
    before = torch.get_num_threads()
    try:
        share_cpus(hydra_cfg)
        assert torch.get_num_threads() == max(1, expected(available_cpus()))
        torch.set_num_threads(before)
        monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's own count: left as it is
        share_cpus(hydra_cfg)
        assert torch.get_num_threads() == before
    finally:
        torch.set_num_threads(before)


def test_the_slurm_and_ray_presets_hold_their_documented_keys() -> None:
    composition.prepare([])
    slurm = composition.compose(["hydra/launcher=slurm"], "config").hydra.launcher
    assert slurm._target_.endswith("SlurmLauncher")
    assert (slurm.partition, slurm.gpus_per_node, slurm.cpus_per_task, slurm.mem_gb, slurm.timeout_min) == (
        None, 1, 8, 32, 240,
    )  # fmt: skip
    preset = yaml.safe_load((ROOT / "conf/hydra/launcher/ray_cluster.yaml").read_text())
    assert preset["defaults"][0] == "ray" and preset["ray"]["init"]["address"] == "auto"
    assert set(preset["ray"]["remote"]) == {"num_cpus", "num_gpus"}
    try:
        ray = composition.compose(["hydra/launcher=ray_cluster"], "config").hydra.launcher
    except Exception as exc:  # the Ray launcher is not installed (the dev extra leaves it out: it brings ray)
        assert messages.hydra_message(exc) == (
            "hydra/launcher=ray_cluster needs Hydra's Ray launcher, which is not installed: "
            'pip install "metalearn[ray]"'
        )
    else:
        assert ray._target_.endswith("RayLauncher") and ray.ray.init.address == "auto" and ray.ray.remote.num_cpus == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["hydra/launcher=joblib", "seed=0,1"],
            "hydra/launcher=joblib needs Hydra's joblib launcher, which is not installed: "
            'pip install "metalearn[sweeps]"',
        ),
        (
            ["hparams_search=maml"],
            "hydra/sweeper=optuna needs Hydra's Optuna sweeper (hparams_search=NAME uses it), which is not installed: "
            'pip install "metalearn[sweeps]"',
        ),
    ],
)
def test_a_missing_plugin_names_the_extra_that_installs_it(args: list[str], message: str) -> None:
    """The plugins hidden from Hydra's plugin scan, as if they were not installed."""
    hide = "hydra_plugins.hydra_joblib_launcher", "hydra_plugins.hydra_optuna_sweeper"
    code = (
        f"import sys\nfor name in {hide!r}: sys.modules[name] = None\n"
        f"sys.argv = ['metalearn', '-m', *{args!r}]\nfrom metalearn.cli import main\nmain()"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"Error: {message}"]


# --- hyper-parameter search -------------------------------------------------------------------------------------
def _study(sweep: Path):
    with warnings.catch_warnings():  # SQLAlchemy 1.4 on optuna 2's models: "Deprecated API features detected"
        warnings.simplefilter("ignore")
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        return optuna.load_study(study_name="metalearn", storage=f"sqlite:///{sweep / 'optuna.db'}")


def test_an_optuna_search_finishes_and_the_same_command_continues_it(tmp_path: Path) -> None:
    sweep = tmp_path / "search"
    command = ["-m", "hparams_search=protonet", *FAST, f"hydra.sweep.dir={sweep}"]
    done = run_cli(*command, "hydra.sweeper.n_trials=3")
    assert done.returncode == 0, done.stderr
    first = [(t.number, t.state.name, t.params, t.value) for t in _study(sweep).trials]
    assert [t[1] for t in first] == ["COMPLETE"] * 3
    assert all(set(t[2]) == {"trainer.lr"} for t in first)  # model.hidden_channels=8 of the command is fixed
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == max(t[3] for t in first)
    winner = next(t for t in first if t[3] == best["best_value"])
    assert best["best_params"] == winner[2]
    assert json.loads((sweep / str(winner[0]) / "results.json").read_text())["best_val_accuracy"] == best["best_value"]

    # the same command continues the study: n_trials more trials (here 1), numbered on in new folders
    done = run_cli(*command, "hydra.sweeper.n_trials=1")
    assert done.returncode == 0, done.stderr
    trials = _study(sweep).trials
    assert [(t.number, t.state.name, t.params, t.value) for t in trials[:3]] == first
    assert len(trials) == 4 and trials[3].state.name == "COMPLETE"
    assert trials[3].params not in [t[2] for t in first]  # a new draw, not the first trial again
    assert sorted(p.parent.name for p in sweep.glob("*/results.json")) == ["0", "1", "2", "3"]
    assert f"sweep of 4 jobs in {sweep}: 4 finished, 0 failed" in done.stderr


def test_a_search_on_regression_data_minimizes_the_mse(tmp_path: Path) -> None:
    sweep = tmp_path / "search"
    done = run_cli(
        "-m", "hparams_search=maml_sinusoid", "trainer.iterations=2", "trainer.progress=false", "device=cpu",
        "sampler.val_episodes=4", "sampler.test_episodes=5", "sampler.tasks_per_batch=2", "hydra.sweeper.n_trials=2",
        f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _study(sweep).direction.name == "MINIMIZE"
    values = [json.loads(p.read_text())["best_val_mse"] for p in sweep.glob("*/results.json")]
    assert len(values) == 2
    assert yaml.safe_load((sweep / "optimization_results.yaml").read_text())["best_value"] == min(values)


SEARCHES = sorted(p.stem for p in (ROOT / "conf" / "hparams_search").glob("*.yaml"))


@pytest.mark.parametrize("search", SEARCHES)
def test_every_search_is_a_seeded_tpe_search_over_real_keys_stored_in_its_sweep_dir(
    search: str, tmp_path: Path
) -> None:
    from metalearn.config import validate_config

    composition.prepare([])
    cfg = composition.compose([f"hparams_search={search}", f"hydra.sweep.dir={tmp_path / 's'}", "seed=7"], "config")
    sweeper = cfg.hydra.sweeper
    assert cfg.hydra.runtime.choices["hydra/sweeper"] == "optuna"
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler" and sweeper.sampler.seed == 7  # no trials yet
    assert sweeper.storage == f"sqlite:///{tmp_path / 's' / 'optuna.db'}" and sweeper.study_name == "metalearn"
    for key in sweeper.params:
        assert OmegaConf.select(cfg, key) is not None, f"{search} searches {key}, which the config does not have"
    job, _ = composition.compose_config([f"hparams_search={search}"])
    validate_config(job)


def test_the_direction_follows_the_data() -> None:
    composition.prepare([])
    for overrides, direction in ((["hparams_search=maml"], "maximize"), (["hparams_search=maml_sinusoid"], "minimize")):
        assert composition.compose(overrides, "config").hydra.sweeper.direction == direction
    assert resolvers.direction("mypkg.not_a_module.Data") == "maximize"


def test_a_search_without_multirun_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(sys, "argv", ["metalearn", "hparams_search=maml", "trainer.iterations=3"])
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "Error: hparams_search=maml is a search of many runs: add -m, as in "
        "metalearn -m hparams_search=maml trainer.iterations=3"
    ]
