"""device.compile: runs compiled where torch.compile holds with torch.func (graphs are made, and the run's numbers
are the eager run's), refused with one clear message where it does not."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from metalearn.errors import ConfigError
from tests.support import TINY

GRAPHS: list[int] = []


@torch._dynamo.register_backend
def metalearn_test_counter(gm: torch.fx.GraphModule, example_inputs: list) -> object:
    """A torch.compile backend that counts the graphs it is given and runs them as traced (no code generation)."""
    GRAPHS.append(len(gm.graph.nodes))
    return gm.forward


# validation and test episodes of one size: the evaluation graph is traced once
FAST = [*TINY, "trainer.iterations=3", "trainer.val_interval=3", "sampler.tasks_per_batch=3", "sampler.test_episodes=4"]
COMPILED = ["device.compile=true", "device.compile_backend=metalearn_test_counter"]


@pytest.mark.parametrize(
    "learner",
    [
        ["algorithm=maml", "algorithm.batching=vmap"],  # the vmapped per-task function, second order inside
        ["algorithm=fomaml", "algorithm.batching=loop"],  # the backbone
        ["algorithm=protonet"],  # the backbone
    ],
    ids=["maml-vmap", "fomaml-loop", "protonet"],
)
def test_a_compiled_run_makes_graphs_and_the_eager_runs_numbers(learner: list[str], tmp_path: Path, inprocess) -> None:  # noqa: ANN001
    torch._dynamo.reset()
    GRAPHS.clear()
    eager = inprocess(tmp_path / "eager", *FAST, *learner)
    assert not GRAPHS
    compiled = inprocess(tmp_path / "compiled", *FAST, *learner, *COMPILED)
    assert GRAPHS, "nothing was compiled"
    assert compiled["mean"] == pytest.approx(eager["mean"], abs=1e-6)
    assert compiled["best_val_accuracy"] == pytest.approx(eager["best_val_accuracy"], abs=1e-6)
    torch._dynamo.reset()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["algorithm=maml", "algorithm.batching=loop"],
            "cannot compile MAML's second-order meta-gradient on batching=loop",
        ),
        (["algorithm=maml", "algorithm.batching=threads"], "on batching=threads: it differentiates twice"),
        (["device.compile_backend=no_such_backend"], "device.compile_backend=no_such_backend is not a torch.compile"),
    ],
)
def test_compiling_what_cannot_be_compiled_is_refused(
    overrides: list[str],
    message: str,
    tmp_path: Path,
    inprocess,  # noqa: ANN001
) -> None:
    with pytest.raises(ConfigError, match=message):
        inprocess(tmp_path, *FAST, "device.compile=true", *overrides)


def test_meta_rl_learners_are_not_compiled(tmp_path: Path, inprocess) -> None:  # noqa: ANN001
    rl = ["dataset=navigation2d", "sampler=tasks", "model=policy_mlp", "algorithm=maml_trpo", "device=cpu"]
    with pytest.raises(ConfigError, match="device.compile=true is for the supervised learners"):
        inprocess(tmp_path, *rl, "device.compile=true")
