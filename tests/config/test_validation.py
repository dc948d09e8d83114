"""Every config error stops the run before any work, with one clear line and a non-zero exit code."""

from __future__ import annotations

import pytest
import torch

from metalearn.cli import compose_config, config_dir
from metalearn.config import validate_config
from metalearn.device import resolve_device
from metalearn.errors import ConfigError
from tests.support import TINY, run_cli


def composed(*overrides: str):
    return compose_config(list(overrides))[0]


@pytest.mark.parametrize(
    "override, message",
    [
        ("sampler.n_way=1", "sampler.n_way=1 is invalid: must be at least 2"),
        ("sampler.k_shot=0", "sampler.k_shot=0 is invalid: must be at least 1"),
        ("sampler.q_query=0", "sampler.q_query=0 is invalid: must be at least 1"),
        ("trainer.iterations=-1", "trainer.iterations=-1 is invalid: must be at least 0"),
        ("sampler.n_way=abc", "sampler.n_way='abc' is invalid: expected int"),
        ("trainer.lr=fast", "trainer.lr='fast' is invalid: expected float"),
        ("trainer.lr=0", "trainer.lr=0.0 is invalid: must be greater than 0"),
        ("+trainer.foo=1", "trainer.foo is not a known key; trainer accepts: iterations"),
        ("+sampler.ways=5", "sampler.ways is not a known key"),
        (
            "algorithm.batch_norm=sometimes",
            "algorithm.batch_norm='sometimes' is invalid: must be one of transductive, running",
        ),
        ("mode=test", "mode='test' is invalid: must be one of train, eval"),
        ("mode=eval", "mode=eval needs a checkpoint"),
        ("device.name=tpu", "device.name='tpu' is invalid: must be one of auto, cpu, cuda, mps"),
        ("+epochs=3", "epochs is not a known key"),
        ("algorithm=maml algorithm.inner_steps=0", "algorithm.inner_steps=0 is invalid: must be at least 1"),
        ("algorithm=reptile trainer.grad_clip=1.0", "trainer.grad_clip=1.0 has no effect with algorithm=reptile"),
        (
            "algorithm=reptile trainer.scheduler=cosine",
            "trainer.scheduler='cosine' has no effect with algorithm=reptile",
        ),
        ("algorithm=anil +algorithm.per_step_batch_norm=true", "algorithm.per_step_batch_norm is not a known key"),
    ],
)
def test_bad_values_are_rejected_with_the_key_value_and_what_is_allowed(override, message):
    cfg = composed(*override.split())
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    assert message in str(info.value)


# options that work only beside another group's option (the combination check refuses them alone)
REINFORCEMENT = [
    "dataset=navigation2d",
    "sampler=tasks",
    "model=policy_mlp",
    "algorithm=maml_trpo",
    "algorithm=maml_ppo",
]
PARTNERS = {
    "sampler=batches": ["algorithm=baseline"],
    **{choice: REINFORCEMENT for choice in REINFORCEMENT},
    "dataset=half_cheetah_vel": REINFORCEMENT,
    "dataset=half_cheetah_dir": REINFORCEMENT,
    "dataset=bandit": REINFORCEMENT,
    "dataset=metaworld_ml1": REINFORCEMENT,
    "dataset=gym": [*REINFORCEMENT, "dataset.env=CartPole-v1"],
    "dataset=video": ["dataset.splits=my-splits"],
}


@pytest.mark.parametrize("group", ["dataset", "sampler", "algorithm", "model", "device", "trainer", "logger"])
def test_every_option_of_every_group_validates(group):
    for option in sorted(p.stem for p in (config_dir() / group).glob("*.yaml")):
        choice = f"{group}={option}"
        validate_config(composed(*PARTNERS.get(choice, []), choice))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_absent_device_is_an_error():
    with pytest.raises(ConfigError, match="device=cuda was asked for, but torch sees no CUDA GPU"):
        resolve_device("cuda")
    assert resolve_device("auto").type in ("cpu", "mps")


def test_cli_reports_one_line_without_traceback_and_exits_non_zero(tmp_path):
    result = run_cli("sampler.n_way=1", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode != 0
    assert result.stderr.strip() == "Error: sampler.n_way=1 is invalid: must be at least 2"
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_full_error_env_shows_traceback(tmp_path):
    result = run_cli("sampler.n_way=1", f"hydra.run.dir={tmp_path / 'run'}", env={"HYDRA_FULL_ERROR": "1"})
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_unknown_group_option_lists_the_options(tmp_path):
    result = run_cli("algorithm=foo", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode != 0
    assert "algorithm=foo is not an option of algorithm" in result.stderr
    assert "protonet" in result.stderr and "Traceback" not in result.stderr


def test_sizes_beyond_the_data_stop_before_training(tmp_path):
    result = run_cli(*TINY, "sampler.n_way=7", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode != 0
    assert "sampler.n_way=7 is too large: the val split of glyphs has 6 classes" in result.stderr
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_incompatible_components_are_config_errors(tmp_path):
    result = run_cli("dataset=sinusoid", "device=cpu", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode != 0
    assert "model=conv4 needs images [C, H, W] or clips" in result.stderr and "use model=mlp" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "override, message",
    [
        ("dataset.jitter=nan", "dataset.jitter=nan is invalid: must be a finite number"),
        ("trainer.weight_decay=nan", "trainer.weight_decay=nan is invalid: must be a finite number"),
        ("trainer.min_lr=nan", "trainer.min_lr=nan is invalid: must be a finite number"),
        ("trainer.lr=inf", "trainer.lr=inf is invalid: must be a finite number"),
        ("algorithm=reptile algorithm.outer_lr_final=nan", "algorithm.outer_lr_final=nan is invalid: must be a finite"),
        ("algorithm=reptile algorithm.adam_betas=[0.0,nan]", "algorithm.adam_betas=[0.0, nan] is invalid: must be a"),
        (
            "sampler.test_episodes=1000000000000",
            "sampler.test_episodes=1000000000000 is invalid: must be at most 1000000",
        ),
        ("model.hidden_channels=1000000000", "model.hidden_channels=1000000000 is invalid: must be at most 4096"),
        ("seed=1180591620717411303424", "seed=1180591620717411303424 is invalid: must be between 0 and 4294967295"),
        ("seed=-1", "seed=-1 is invalid: must be between 0 and 4294967295"),
        ("seed=1e3", "seed=1000.0 is invalid: expected int"),
    ],
)
def test_non_finite_and_absurd_values_are_refused_naming_the_key(override, message):
    with pytest.raises(ConfigError) as info:
        validate_config(composed(*override.split()))
    assert str(info.value).startswith(message)


def test_quoted_numbers_and_booleans_run_as_what_they_are():
    """The values checked are the values run: '5' runs as 5, 'false' as False (not as a true, non-empty string)."""
    cfg = validate_config(
        composed("sampler.n_way='5'", "trainer.iterations='3'", "trainer.lr='0.001'", "trainer.progress='false'")
    )
    assert (cfg.sampler.n_way, cfg.trainer.iterations, cfg.trainer.lr, cfg.trainer.progress) == (5, 3, 0.001, False)
    assert type(cfg.sampler.n_way) is int and type(cfg.trainer.lr) is float and cfg.trainer.progress is False
    assert cfg.sampler.seed == cfg.seed == 0  # interpolations resolved: nothing left to resolve later
