"""`batching=auto` is a fixed rule per device, so runs with one seed (and resumed runs) take one path."""

from __future__ import annotations

import torch

from metalearn.algorithms.functional import auto_path
from metalearn.algorithms.maml import MAML
from metalearn.algorithms.reptile import Reptile
from metalearn.models.conv4 import Conv4
from metalearn.models.mlp import MLP

CONV, MLP_NET = Conv4((1, 28, 28)), MLP((1,), [8])


def test_auto_is_vmap_on_cuda_and_for_mlps_and_the_loop_for_conv_nets_elsewhere():
    assert auto_path(torch.device("cpu"), CONV) == "loop"
    assert auto_path(torch.device("mps"), CONV) == "loop"
    assert auto_path(torch.device("cuda", 0), CONV) == "vmap"
    assert auto_path(torch.device("cpu"), MLP_NET) == "vmap"


def test_learners_follow_the_rule_and_explicit_settings_win():
    for make in (MAML, Reptile):
        assert make(Conv4((1, 28, 28)), "classification", 5, batching="auto").pick_batching("train") == "loop"
        assert make(MLP((1,), [8]), "regression", 1, batching="auto").pick_batching("train") == "vmap"
        assert make(MLP((1,), [8]), "regression", 1, batching="loop").pick_batching("eval") == "loop"
        assert make(Conv4((1, 28, 28)), "classification", 5, batching="vmap").pick_batching("eval") == "vmap"


def test_checkpoint_inner_trains_on_the_loop_under_auto():
    learner = MAML(MLP((1,), [8]), "regression", 1, batching="auto", checkpoint_inner=True)
    assert learner.pick_batching("train") == "loop"
