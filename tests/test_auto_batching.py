"""`batching=auto` is a fixed rule per device, so runs with one seed (and resumed runs) take one path."""

from __future__ import annotations

import torch

from metalearn.algorithms.functional import auto_path
from metalearn.algorithms.maml import MAML
from metalearn.algorithms.reptile import Reptile
from metalearn.models.mlp import MLP


def test_auto_is_the_loop_on_cpu_and_vmap_on_cuda():
    assert auto_path(torch.device("cpu")) == "loop"
    assert auto_path(torch.device("cuda", 0)) == "vmap"
    assert auto_path(torch.device("mps")) == "loop"


def test_learners_follow_the_rule_and_explicit_settings_win():
    for make in (MAML, Reptile):
        assert make(MLP((1,), [8]), "regression", 1, batching="auto").pick_batching("train") == "loop"
        assert make(MLP((1,), [8]), "regression", 1, batching="vmap").pick_batching("eval") == "vmap"


def test_checkpoint_inner_trains_on_the_loop_under_auto():
    learner = MAML(MLP((1,), [8]), "regression", 1, batching="auto", checkpoint_inner=True)
    assert learner.pick_batching("train") == "loop"
