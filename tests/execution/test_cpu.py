"""How the CPU runs the networks: channels-last activations and the malloc settings (device.reuse_memory).

Both change speed only: the channels-last network must compute what the contiguous one computes, and
keeping freed memory must avoid the page faults of re-allocating it, not change any result.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from metalearn.algorithms.maml import MAML
from metalearn.config.groups.model import Conv4Config
from metalearn.errors import ConfigError
from metalearn.models.conv4 import Conv4


def run_with_layout(memory_format: str, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[bool]]:
    torch.manual_seed(0)
    net = Conv4((x.shape[1], x.shape[2], x.shape[3]), hidden_channels=8, memory_format=memory_format)
    layouts: list[bool] = []
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(
                lambda m, i, out: layouts.append(out.is_contiguous(memory_format=torch.channels_last))
            )
    out = net(x)
    grads = torch.autograd.grad(out.square().sum(), list(net.parameters()))
    return out, list(grads), layouts


@pytest.mark.parametrize("channels", [1, 3])
def test_channels_last_computes_what_contiguous_computes(channels):
    x = torch.rand(6, channels, 28, 28, generator=torch.Generator().manual_seed(1))
    out_c, grads_c, layouts_c = run_with_layout("contiguous", x)
    out_l, grads_l, layouts_l = run_with_layout("channels_last", x)
    assert layouts_l == [True] * 4 and layouts_c == [False] * 4  # the layouts really differ (even for 1 channel)
    torch.testing.assert_close(out_l, out_c, rtol=1e-5, atol=1e-5)
    scale = max(g.abs().max().item() for g in grads_c)  # the conv biases' gradients are ~0 (BatchNorm cancels them)
    for a, b in zip(grads_l, grads_c):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * scale)
    assert run_with_layout("auto", x)[2] == [True] * 4  # auto: channels-last on the CPU


def test_channels_last_maml_meta_gradient_matches_contiguous():
    labels = torch.arange(5)
    g = torch.Generator().manual_seed(0)
    sx, qx = torch.rand(5, 1, 28, 28, generator=g), torch.rand(10, 1, 28, 28, generator=g)
    grads = []
    for memory_format in ("contiguous", "channels_last"):
        torch.manual_seed(0)
        learner = MAML(
            Conv4((1, 28, 28), 8, memory_format=memory_format), "classification", 5, inner_steps=2, batching="loop"
        )
        outer, _, _ = learner.adapt_and_score(
            learner.theta(), sx, labels, qx, labels.repeat_interleave(2), training=True
        )
        grads.append(torch.autograd.grad(outer, list(learner.parameters())))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_bad_memory_format_is_refused():
    with pytest.raises(ConfigError, match="model.memory_format='nhwc' is invalid"):
        Conv4Config(memory_format="nhwc").check("model")


# Allocate 40 blocks of 16 MB, free them all, allocate and touch them again: with glibc's defaults the
# freed blocks go back to the OS (unmapped or trimmed) and the second round faults every page in again.
_FAULTS = """
import resource, sys, torch
from metalearn.device import reuse_freed_memory
if sys.argv[1] == "reuse":
    assert reuse_freed_memory()
blocks = [torch.ones(4 << 20) for _ in range(40)]
del blocks
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
blocks = [torch.ones(4 << 20) for _ in range(40)]
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings (Linux)")
def test_reused_memory_is_not_faulted_in_again():
    def faults(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, timeout=120)
        if "AssertionError" in done.stderr:
            pytest.skip("this C library has no mallopt (not glibc)")
        assert done.returncode == 0, done.stderr
        return int(done.stdout.strip())

    pages = 40 * (16 << 20) // 4096
    # the fewest of two runs each: other processes on a busy machine can make the kernel reclaim pages now and then
    default, reuse = min(faults("default") for _ in range(2)), min(faults("reuse") for _ in range(2))
    assert default > pages // 2  # the memory came back from the OS, page by page
    assert reuse < default // 4
