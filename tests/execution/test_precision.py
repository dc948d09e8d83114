"""device.precision: the forward passes in bfloat16 or float16 (autocast) on every path, the second-order MAML
meta-gradient against float32, and fp16's loss scaling (a skipped step on overflow)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from metalearn.algorithms.maml import MAML
from metalearn.errors import ConfigError
from metalearn.execution import precision
from metalearn.execution.threads import map_threads
from metalearn.models.conv4 import Conv4
from metalearn.sampling.sampler import EpisodeSampler
from tests.support import TINY, tiny_glyphs


def maml_gradient(learner: MAML, batch, dtype: torch.dtype | None, first_order: bool = False) -> torch.Tensor:  # noqa: ANN001
    """The meta-gradient of one meta-batch, flattened, with the forward passes in `dtype` (None: float32)."""
    learner.zero_grad(set_to_none=True)
    learner.first_order = first_order
    with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        out = learner.meta_loss(batch)
    if out.grads is not None:  # batching=threads differentiates each task where it runs
        return torch.cat([g.flatten() for g in out.grads])
    out.loss.backward()
    return torch.cat([p.grad.flatten() for p in learner.parameters()])


@pytest.fixture(scope="module")
def maml_and_batch():  # noqa: ANN201
    torch.manual_seed(0)
    learner = MAML(Conv4((1, 28, 28), hidden_channels=16), "classification", n_way=5, inner_lr=0.4, inner_steps=1)
    sampler = EpisodeSampler(tiny_glyphs(), q_query=5, tasks_per_batch=4, val_episodes=2, test_episodes=2)
    return learner, sampler.train_batch()


def relative(g: torch.Tensor, reference: torch.Tensor) -> float:
    return float((g - reference).norm() / reference.norm())


def test_low_precision_keeps_the_second_order_part_of_the_maml_meta_gradient(maml_and_batch) -> None:  # noqa: ANN001
    """bf16 and fp16 meta-gradients lie nearer float32's second-order one than the first-order gradient does (so
    the second-order term is not lost in rounding), fp16's (10 bits of mantissa) nearer than bf16's (8 bits)."""
    learner, batch = maml_and_batch
    learner.batching = "loop"
    exact = maml_gradient(learner, batch, None)
    first_order_gap = relative(maml_gradient(learner, batch, None, first_order=True), exact)
    bf16, fp16 = (relative(maml_gradient(learner, batch, dtype), exact) for dtype in (torch.bfloat16, torch.float16))
    assert 0 < fp16 < bf16 < first_order_gap / 2, (fp16, bf16, first_order_gap)


def test_every_path_runs_in_the_precision_asked_for(maml_and_batch) -> None:  # noqa: ANN001
    """On the loop, vmap and worker threads (which enter the caller's autocast) the meta-gradient is bf16's: off
    float32's by bf16's rounding (each path's kernels round in their own way), and within the band that keeps the
    second-order term."""
    learner, batch = maml_and_batch
    exact = maml_gradient(learner, batch, None)
    first_order_gap = relative(maml_gradient(learner, batch, None, first_order=True), exact)
    grads = {}
    for path in ("loop", "vmap", "threads"):
        learner.batching = path
        grads[path] = maml_gradient(learner, batch, torch.bfloat16)
        assert 1e-3 < relative(grads[path], exact) < first_order_gap / 2, path
    learner.batching = "loop"


def test_worker_threads_inherit_the_autocast_region() -> None:
    x = torch.randn(3, 4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        dtypes = map_threads(lambda m: ((m @ m),), (x,), torch.nn.Linear(1, 1))
    assert {out[0].dtype for out in dtypes} == {torch.bfloat16}


def test_fp16_loss_scaling_unscales_the_step_and_skips_one_that_overflows() -> None:
    torch.manual_seed(0)
    learner = MAML(Conv4((1, 16, 16), hidden_channels=4), "classification", n_way=2, inner_steps=1)
    plain = MAML(Conv4((1, 16, 16), hidden_channels=4), "classification", n_way=2, inner_steps=1)
    plain.load_state_dict(learner.state_dict())
    loss_of = lambda m: sum(p.pow(2).sum() for p in m.parameters()) * 1e-3
    sgd = lambda m: torch.optim.SGD(m.parameters(), lr=0.1)
    scaler, opt = torch.amp.GradScaler("cpu", init_scale=2.0**10), sgd(learner)
    with precision.loss_scaling(scaler):
        learner.outer_update(_step(loss_of(learner)), opt, grad_clip=None)
    plain.outer_update(_step(loss_of(plain)), sgd(plain), grad_clip=None)
    for a, b in zip(learner.parameters(), plain.parameters()):
        torch.testing.assert_close(a, b)  # the scaled loss's gradient was unscaled before the step
    before = [p.detach().clone() for p in learner.parameters()]
    with precision.loss_scaling(scaler):
        learner.outer_update(_step(loss_of(learner) * float("inf")), opt, grad_clip=None)
    assert all(torch.equal(a, b) for a, b in zip(learner.parameters(), before))  # skipped
    assert all(p.grad is None for p in learner.parameters()) and scaler.get_scale() == 2.0**9


def test_fp16_stops_skipping_once_the_scale_falls_below_one() -> None:
    """A gradient that is not finite at any scale: the skipped steps lower the scale, and below 1 the gradient is
    left in place for the trainer's check to stop the run (instead of skipping silently for ever)."""
    learner = MAML(Conv4((1, 16, 16), hidden_channels=4), "classification", n_way=2, inner_steps=1)
    scaler, opt = torch.amp.GradScaler("cpu", init_scale=2.0), torch.optim.SGD(learner.parameters(), lr=0.1)
    poisoned = lambda: _step(sum(p.sum() for p in learner.parameters()) * float("nan"))
    with precision.loss_scaling(scaler):
        learner.outer_update(poisoned(), opt, grad_clip=None)  # scale 2 -> 1: skipped, gradient dropped
        assert all(p.grad is None for p in learner.parameters())
        learner.outer_update(poisoned(), opt, grad_clip=None)  # 1 -> 0.5: the gradient stays
    assert scaler.get_scale() == 0.5
    assert not all(bool(p.grad.isfinite().all()) for p in learner.parameters())


def _step(loss: torch.Tensor):  # noqa: ANN202
    from metalearn.algorithms.base import StepOutput

    return StepOutput(loss)


def test_fp16_is_refused_off_cuda(tmp_path: Path, inprocess) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError, match="device.precision=fp16 needs a CUDA GPU.*use device.precision=bf16"):
        inprocess(tmp_path, *TINY, "device.precision=fp16")
