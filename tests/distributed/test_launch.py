"""Which process of a launch this is (metalearn.launch), how a meta-batch is split (shard_bounds), and the SLURM
preset of multi-GPU jobs, without starting any process."""

from __future__ import annotations

import pytest
import torch

from metalearn.cli import composition
from metalearn.episode import EpisodeBatch, LabelledBatch
from metalearn.execution import ranks
from metalearn.launch import Launch, first_host, launch_from_env, rendezvous


def test_torchrun_variables_win_over_slurm_ones() -> None:
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "SLURM_STEP_NUM_TASKS": "2", "SLURM_PROCID": "0"}
    assert launch_from_env(env) == Launch(3, 4, 1, "torchrun")


def test_a_slurm_step_of_several_tasks_is_a_launch_and_a_batch_script_is_not() -> None:
    step = {"SLURM_STEP_NUM_TASKS": "8", "SLURM_PROCID": "5", "SLURM_LOCALID": "1", "SLURM_NTASKS": "8"}
    assert launch_from_env(step) == Launch(5, 8, 1, "slurm")
    # the batch script's shell of an 8-task job: no step, so a command there is one process, not rank 0 of 8
    assert launch_from_env({"SLURM_NTASKS": "8", "SLURM_PROCID": "0"}) == Launch()
    assert launch_from_env({"SLURM_STEP_NUM_TASKS": "1", "SLURM_PROCID": "0"}) == Launch()


def test_submitit_local_tasks_are_a_launch() -> None:
    env = {"SUBMITIT_LOCAL_NTASKS": "2", "SUBMITIT_LOCAL_GLOBALID": "1", "SUBMITIT_LOCAL_LOCALID": "1"}
    assert launch_from_env(env) == Launch(1, 2, 1, "submitit")
    assert rendezvous(launch_from_env(env), {**env, "SUBMITIT_LOCAL_JOB_ID": "4321"}) == ("127.0.0.1", 24321)


@pytest.mark.parametrize(
    ("nodelist", "host"),
    [("gpu[07-09,12],cpu1", "gpu07"), ("a,b", "a"), ("node", "node"), ("n[001-002]-ib", "n001-ib"), ("x[3]", "x3")],
)
def test_the_first_host_of_a_slurm_node_list(nodelist: str, host: str) -> None:
    assert first_host(nodelist) == host


def test_slurm_tasks_meet_at_the_first_node_on_a_port_of_their_job() -> None:
    env = {
        "SLURM_STEP_NUM_TASKS": "8",
        "SLURM_PROCID": "5",
        "SLURM_STEP_NODELIST": "gpu[03-04]",
        "SLURM_JOB_ID": "1234",
    }
    launch = launch_from_env(env)
    assert rendezvous(launch, env) == ("gpu03", 20000 + 1234 * 7 % 20000)
    # another step of the same job meets elsewhere; what the user set wins
    assert rendezvous(launch, {**env, "SLURM_STEP_ID": "1"})[1] == 20000 + (1234 * 7 + 1) % 20000
    assert rendezvous(launch, {**env, "MASTER_ADDR": "head", "MASTER_PORT": "29500"}) == ("head", 29500)


@pytest.mark.parametrize(("n", "world"), [(5, 2), (4, 4), (32, 3), (7, 1), (2, 5)])
def test_shards_are_contiguous_cover_the_batch_once_and_differ_by_at_most_one(n: int, world: int) -> None:
    bounds = [ranks.shard_bounds(n, r, world) for r in range(world)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_batches_of_every_kind_give_their_parts() -> None:
    batch = EpisodeBatch(*(torch_arange(5, 3) for _ in range(4)), n_way=3)
    part = batch.part(1, 3)
    assert len(part) == 2 and part.n_way == 3 and part.query_x[0, 0].item() == batch.query_x[1, 0].item()
    images = LabelledBatch(torch_arange(6, 2), torch_arange(6, 1)[:, 0])
    assert len(images.part(4, 6)) == 2 and images.part(4, 6).y.tolist() == [4, 5]


def torch_arange(rows: int, cols: int) -> torch.Tensor:
    """[rows, cols], row i holding i."""
    return torch.arange(rows).repeat_interleave(cols).view(rows, cols)


def test_one_process_needs_no_process_group() -> None:
    assert not ranks.join(5.0)
    assert (ranks.rank(), ranks.world_size(), ranks.is_primary()) == (0, 1, True)
    values = [torch.tensor([1.0, 2.0])]
    assert ranks.task_mean(values) == values and ranks.largest(3) == 3 and ranks.all_ranks("x") == ["x"]
    assert ranks.gather_in_order([{"a": [1.0, 2.0]}, {"a": [3.0]}]) == {"a": [1.0, 2.0, 3.0]}


def test_the_multi_gpu_slurm_preset_starts_one_task_per_gpu() -> None:
    launcher = composition.compose(
        ["hydra/launcher=slurm_multi_gpu", "hydra.launcher.gpus_per_node=8", "hydra.launcher.nodes=2"], "config"
    ).hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.nodes, launcher.gpus_per_node, launcher.tasks_per_node) == (2, 8, 8)
    assert launcher.cpus_per_task == 8 and launcher.timeout_min == 240  # the rest is the slurm preset's


def test_several_processes_refuse_another_config_name(monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # noqa: ANN001
    from metalearn import cli

    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr("sys.argv", ["metalearn", "--config-name", "mine"])
    with pytest.raises(SystemExit) as stop:
        cli.main()
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "Error: several processes (torchrun, srun) run metalearn's own config; remove --config-name"
    )
