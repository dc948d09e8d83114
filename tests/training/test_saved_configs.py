"""A checkpoint (or a run's saved config) is data: it cannot steer where the program writes or run resolvers,
and a damaged one is refused in one line naming the file and the entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from metalearn.errors import CheckpointError
from metalearn.training.checkpoint import load_checkpoint, save_checkpoint
from tests.support import TINY, run_cli, run_inprocess


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    run_inprocess(run_dir, *TINY, "trainer.iterations=2")
    return run_dir / "checkpoints" / "best.pt"


def edited(trained: Path, folder: Path, **changes: object) -> Path:
    """A copy of the trained checkpoint with some entries replaced."""
    blob = load_checkpoint(trained)
    blob.update(changes)
    path = folder / "edited.pt"
    save_checkpoint(path, **blob)
    return path


def with_config(trained: Path, folder: Path, dataset: dict) -> Path:
    config = yaml.safe_load(load_checkpoint(trained)["config"])
    config["dataset"].update(dataset)
    return edited(trained, folder, config=yaml.safe_dump(config))


def test_a_checkpoint_config_calling_a_resolver_is_refused(trained: Path, tmp_path: Path) -> None:
    leak = tmp_path / "leak"
    path = with_config(trained, tmp_path, {"cache_dir": "${oc.env:METALEARN_TEST_LEAK}"})
    done = run_cli(
        "mode=eval", f"checkpoint={path}", f"hydra.run.dir={tmp_path / 'eval'}", env={"METALEARN_TEST_LEAK": str(leak)}
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        f"Error: checkpoint {path} holds dataset.cache_dir='${{oc.env:METALEARN_TEST_LEAK}}', which calls a "
        "resolver; a saved config is data: edit the value or give it on the command line"
    )
    assert not leak.exists() and not (tmp_path / "eval").exists()


def test_where_an_evaluation_writes_comes_from_its_own_command(trained: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "steered-cache"
    path = with_config(trained, tmp_path, {"cache_dir": str(elsewhere)})
    result = run_inprocess(tmp_path / "eval", "mode=eval", f"checkpoint={path}", "trainer.progress=false")
    assert result["episodes"] == 8 and not elsewhere.exists()


@pytest.mark.parametrize(
    "entry, value, kind",
    [
        ("choices", None, "NoneType"),
        ("choices", "maml", "str"),
        ("choices", ["algorithm", "maml"], "list"),
        ("config", {"dataset": {}}, "dict"),
        ("learner", "weights", "str"),
    ],
)
def test_a_damaged_entry_is_named(trained: Path, tmp_path: Path, entry: str, value: object, kind: str) -> None:
    path = edited(trained, tmp_path, **{entry: value})
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert str(err.value).startswith(
        f"checkpoint {path} is damaged or not metalearn's: its entry '{entry}' is a {kind}"
    )
    done = run_cli("mode=eval", f"checkpoint={path}", f"hydra.run.dir={tmp_path / 'eval'}")
    assert done.returncode == 2 and done.stderr.startswith(f"Error: checkpoint {path} is damaged"), done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "eval").exists()


def test_results_name_the_checkpoints_own_options(trained: Path, tmp_path: Path) -> None:
    result = run_inprocess(tmp_path / "eval", "mode=eval", f"checkpoint={trained}", "trainer.progress=false")
    written = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert (written["algorithm"], written["dataset"], written["model"]) == ("protonet", "glyphs", "conv4")
    assert result["mode"] == "eval"
