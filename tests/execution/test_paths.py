"""`batching=auto` is a fixed rule per device and network, so runs with one seed (and resumed runs) take one path."""

from __future__ import annotations

import torch

from metalearn.algorithms.maml import MAML
from metalearn.algorithms.reptile import Reptile
from metalearn.execution.paths import auto_path
from metalearn.models.conv4 import Conv4
from metalearn.models.mlp import MLP

CONV, MLP_NET = Conv4((1, 28, 28)), MLP((1,), [8])


def test_auto_is_vmap_on_cuda_and_for_mlps_threads_for_conv_nets_on_cpu():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert auto_path(torch.device("cpu"), CONV) == "threads"
        torch.set_num_threads(1)  # one core: nothing to run side by side
        assert auto_path(torch.device("cpu"), CONV) == "loop"
    finally:
        torch.set_num_threads(threads)
    assert auto_path(torch.device("mps"), CONV) == "loop"
    assert auto_path(torch.device("cuda", 0), CONV) == "vmap"
    assert auto_path(torch.device("cpu"), MLP_NET) == "vmap"


def test_learners_follow_the_rule_and_explicit_settings_win():
    cpu_conv = auto_path(torch.device("cpu"), CONV)
    for make in (MAML, Reptile):
        assert make(Conv4((1, 28, 28)), "classification", 5, batching="auto").path("train") == cpu_conv
        assert (
            make(Conv4((1, 28, 28)), "classification", 5, batching="auto", batch_norm="running").path("train") == "loop"
        )
        assert make(MLP((1,), [8]), "regression", 1, batching="auto").path("train") == "vmap"
        assert make(MLP((1,), [8]), "regression", 1, batching="loop").path("eval") == "loop"
        assert make(Conv4((1, 28, 28)), "classification", 5, batching="vmap").path("eval") == "vmap"


def test_checkpoint_inner_trains_on_the_loop_under_auto():
    learner = MAML(MLP((1,), [8]), "regression", 1, batching="auto", checkpoint_inner=True)
    assert learner.path("train") == "loop"
