"""The gradient-based family: MAML, FOMAML, MAML++, ANIL, Meta-SGD, Reptile.

Checks meta-gradients against hand-derived values, the vmap path against the loop path, the parts each
algorithm adapts, the Reptile interpolation against torch.optim, the MAML++ schedules, and that each
one learns.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from metalearn.algorithms.anil import ANIL
from metalearn.algorithms.maml import MAML
from metalearn.algorithms.mamlpp import MAMLPlusPlus
from metalearn.algorithms.metasgd import MetaSGD
from metalearn.algorithms.reptile import Reptile
from metalearn.data.glyphs import load_glyphs
from metalearn.data.sinusoid import SinusoidTasks
from metalearn.episode import EpisodeBatch
from metalearn.models.conv4 import Conv4
from metalearn.models.mlp import MLP
from metalearn.sampling.sampler import EpisodeSampler
from metalearn.training.evaluator import evaluate
from tests.support import Identity


def image_batch(tasks: int = 3, seed: int = 0) -> EpisodeBatch:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(5)
    return EpisodeBatch(
        torch.rand(tasks, 5, 1, 8, 8, generator=g),
        labels.repeat(tasks, 1),
        torch.rand(tasks, 10, 1, 8, 8, generator=g),
        labels.repeat_interleave(2).repeat(tasks, 1),
    )


def small_conv() -> Conv4:
    return Conv4((1, 8, 8), hidden_channels=4, num_blocks=2)


def meta_grads(learner: MAML, batch: EpisodeBatch, batching: str) -> dict[str, torch.Tensor]:
    """The meta-gradient as the trainer applies it (batching=threads hands it over computed)."""
    learner.batching = batching
    learner.zero_grad()
    out = learner.meta_loss(batch)
    if out.grads is None:
        out.loss.backward()
    else:
        assert not out.loss.requires_grad
        for p, g in zip(learner.parameters(), out.grads):
            p.grad = g
    return {n: p.grad.clone() for n, p in learner.named_parameters() if p.grad is not None}


# --- hand-derived meta-gradients ---------------------------------------------------------------
def hand_derived(
    w: float, b: float, xs: float, ys: float, xq: float, yq: float, a: float, steps: int, second_order: bool
):
    """f(x) = w x + b, one support point, one query point, squared error.

    Support loss L_s = (w xs + b - ys)^2 has gradient 2 r_s (xs, 1) with r_s = w xs + b - ys and constant
    Hessian H = 2 [[xs^2, xs], [xs, 1]]. An inner step theta' = theta - a grad is affine in theta with
    Jacobian J = I - a H, so after k steps d theta_k / d theta = J^k. With r_q = w_k xq + b_k - yq the
    query gradient at theta_k is g_q = 2 r_q (xq, 1). Second-order MAML's meta-gradient is (J^T)^k g_q =
    J^k g_q (J is symmetric); first-order MAML's is g_q itself.
    """
    for _ in range(steps):
        r_s = w * xs + b - ys
        w, b = w - a * 2 * r_s * xs, b - a * 2 * r_s
    r_q = w * xq + b - yq
    g = [2 * r_q * xq, 2 * r_q]
    if second_order:
        h = [[2 * xs * xs, 2 * xs], [2 * xs, 2.0]]
        j = [[1 - a * h[0][0], -a * h[0][1]], [-a * h[1][0], 1 - a * h[1][1]]]
        for _ in range(steps):
            g = [j[0][0] * g[0] + j[0][1] * g[1], j[1][0] * g[0] + j[1][1] * g[1]]
    return g


@pytest.mark.parametrize("batching", ["loop", "vmap"])
@pytest.mark.parametrize("steps", [1, 2])
@pytest.mark.parametrize("first_order", [False, True])
def test_meta_gradient_equals_hand_derived(batching, steps, first_order):
    w, b, xs, ys, xq, yq, a = 0.7, -0.3, 1.5, 0.4, -0.8, 1.1, 0.1
    learner = MAML(
        Identity(), "regression", 1, inner_lr=a, inner_steps=steps, first_order=first_order, batching=batching
    )
    learner = learner.double()
    with torch.no_grad():
        learner.head.weight.fill_(w)
        learner.head.bias.fill_(b)
    t = lambda v: torch.tensor([[[v]]], dtype=torch.float64)  # noqa: E731  [tasks=1, points=1, 1]
    batch = EpisodeBatch(t(xs), t(ys), t(xq), t(yq))
    learner.meta_loss(batch).loss.backward()
    expected = hand_derived(w, b, xs, ys, xq, yq, a, steps, second_order=not first_order)
    got = [float(learner.head.weight.grad), float(learner.head.bias.grad)]
    assert got == pytest.approx(expected, rel=1e-10)
    # and the two differ: the test can tell first from second order
    other = hand_derived(w, b, xs, ys, xq, yq, a, steps, second_order=first_order)
    assert got != pytest.approx(other, rel=1e-3)


def test_first_order_builds_no_second_order_graph(monkeypatch):
    """FOMAML never asks autograd for create_graph, and no inner gradient is part of a graph."""
    calls = []
    real = torch.autograd.grad

    def recording(outputs, inputs, *args, **kwargs):
        grads = real(outputs, inputs, *args, **kwargs)
        calls.append((kwargs.get("create_graph", False), any(g.requires_grad for g in grads)))
        return grads

    monkeypatch.setattr(torch.autograd, "grad", recording)
    learner = MAML(small_conv(), "classification", 5, inner_steps=2, first_order=True, batching="loop")
    learner.meta_loss(image_batch()).loss.backward()
    assert len(calls) == 2 * 3 and not any(create or tracked for create, tracked in calls)
    calls.clear()
    learner.first_order = False
    learner.meta_loss(image_batch()).loss.backward()
    assert calls and all(create and tracked for create, tracked in calls)


# --- vmap and loop agree ---------------------------------------------------------------------
FAMILY = {
    "maml": lambda: MAML(small_conv(), "classification", 5, inner_steps=2),
    "fomaml": lambda: MAML(small_conv(), "classification", 5, inner_steps=2, first_order=True),
    "maml++": lambda: MAMLPlusPlus(
        small_conv(),
        "classification",
        5,
        inner_lr=0.4,
        inner_steps=3,
        multi_step_loss_iterations=10,
        first_order_iterations=0,
    ),
    "anil": lambda: ANIL(small_conv(), "classification", 5, inner_steps=2),
    "metasgd": lambda: MetaSGD(small_conv(), "classification", 5, inner_lr=0.1),
}


@pytest.mark.parametrize("batching", ["vmap", "threads"])
@pytest.mark.parametrize("name", FAMILY)
def test_vmap_threads_and_loop_give_the_same_meta_gradient(name, batching):
    torch.manual_seed(0)
    learner = FAMILY[name]()
    batch = image_batch()
    loop, other = meta_grads(learner, batch, "loop"), meta_grads(learner, batch, batching)
    assert loop.keys() == other.keys() and len(loop) > 0
    for key in loop:
        torch.testing.assert_close(other[key], loop[key], rtol=1e-4, atol=1e-6, msg=f"{name}: {key}")
    learner.eval()
    with torch.no_grad():
        learner.batching = "loop"
        a = learner.predict_batch(batch)
        learner.batching = batching
        b = learner.predict_batch(batch)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["maml", "maml++"])
def test_threads_results_do_not_depend_on_the_worker_count(name):
    """Each task runs alone on one thread and results are combined in task order: 1 or 2 workers, same bits."""
    torch.manual_seed(0)
    learner = FAMILY[name]()
    batch = image_batch(tasks=5)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        two = meta_grads(learner, batch, "threads")
        again = meta_grads(learner, batch, "threads")
        torch.set_num_threads(1)
        one = meta_grads(learner, batch, "threads")
    finally:
        torch.set_num_threads(threads)
    for key in two:
        assert torch.equal(two[key], again[key]) and torch.equal(two[key], one[key]), key


@pytest.mark.parametrize(
    "make",
    [
        lambda: MAML(Conv4((1, 28, 28), hidden_channels=8), "classification", 5, inner_lr=0.4, eval_inner_steps=3),
        lambda: Reptile(Conv4((1, 28, 28), hidden_channels=8), "classification", 5, eval_inner_steps=4),
    ],
    ids=["maml", "reptile"],
)
def test_evaluation_on_threads_repeats_the_sequential_evaluation_bit_for_bit(make):
    """The fixed test episodes evaluated side by side on two workers give the bits of evaluating them one after
    another on one core, episode by episode, so the faster path changes no reported figure."""
    torch.manual_seed(0)
    learner = make()
    sampler = EpisodeSampler(load_glyphs(10, 10, 10), q_query=3, test_episodes=6, eval_batch_size=4)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        learner.batching = "loop"
        sequential = evaluate(learner, sampler, "test")
        outputs = [learner.predict_batch(b) for b in sampler.eval_batches("test")]
        torch.set_num_threads(2)
        learner.batching = "threads"
        side_by_side = evaluate(learner, sampler, "test")
        again = [learner.predict_batch(b) for b in sampler.eval_batches("test")]
    finally:
        torch.set_num_threads(threads)
    assert side_by_side == sequential and sequential.episodes == 6
    assert all(torch.equal(a, b) for a, b in zip(outputs, again, strict=True))


@pytest.mark.parametrize("batching", ["loop", "threads"])
def test_checkpointed_inner_loop_gives_the_same_meta_gradient(batching):
    torch.manual_seed(0)
    plain = MAML(small_conv(), "classification", 5, inner_steps=3, batching="loop")
    recomputed = copy.deepcopy(plain)
    recomputed.checkpoint_inner = True
    batch = image_batch()
    a, b = meta_grads(plain, batch, "loop"), meta_grads(recomputed, batch, batching)
    for key in a:
        torch.testing.assert_close(b[key], a[key])


def test_anil_adapts_only_the_head():
    torch.manual_seed(0)
    learner = ANIL(small_conv(), "classification", 5, inner_steps=2, batching="loop")
    seen = []
    inner_step = learner.inner_step

    def recording(theta, fast, *args, **kwargs):
        new = inner_step(theta, fast, *args, **kwargs)
        seen.append({n: (fast[n] - new[n]).abs().max().item() for n in new})
        return new

    learner.inner_step = recording  # type: ignore[method-assign]
    learner.meta_loss(image_batch()).loss.backward()
    assert seen and all(set(step) == {"1.weight", "1.bias"} for step in seen)
    assert all(change > 0 for step in seen for change in step.values())
    # the body still learns, in the outer loop
    assert all(
        p.grad is not None and p.grad.abs().sum() > 0
        for n, p in learner.backbone.named_parameters()
        if n.endswith("0.weight")
    )


def test_metasgd_learning_rates_receive_gradients():
    torch.manual_seed(0)
    learner = MetaSGD(small_conv(), "classification", 5, inner_lr=0.1, batching="loop")
    learner.meta_loss(image_batch()).loss.backward()
    assert len(learner.alphas) == len(list(learner.net.parameters()))
    for key, alpha in learner.alphas.items():
        assert alpha.shape == dict(learner.net.named_parameters())[key.replace("__", ".")].shape
        assert alpha.grad is not None and alpha.grad.abs().sum() > 0, key


# --- Reptile ---------------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("batching", ["loop", "vmap"])
def test_reptile_update_is_the_interpolation(optimizer, batching):
    """theta_new = theta + epsilon * mean_i(phi_i - theta), phi_i from torch.optim on each task's data."""
    torch.manual_seed(0)  # an MLP: Adam's g / (|g| + eps) would amplify float noise in the pre-BatchNorm conv biases
    learner = Reptile(
        MLP((1, 8, 8), [16]),
        "classification",
        5,
        inner_optimizer=optimizer,
        inner_lr=0.05,
        inner_steps=3,
        outer_lr=1.0,
        outer_lr_final=0.2,
        batching=batching,
    )
    batch = image_batch()
    learner.set_progress(3, 5)  # epsilon = 1 - (2/5)(1 - 0.2) = 0.68
    assert learner.epsilon == pytest.approx(0.68)
    theta = {n: p.detach().clone() for n, p in learner.net.named_parameters()}
    phis = []
    for episode in batch.episodes():
        net = copy.deepcopy(learner.net)
        opt = (
            torch.optim.SGD(net.parameters(), lr=0.05)
            if optimizer == "sgd"
            else torch.optim.Adam(net.parameters(), lr=0.05, betas=(0.0, 0.999))
        )
        x, y = torch.cat([episode.support_x, episode.query_x]), torch.cat([episode.support_y, episode.query_y])
        for _ in range(3):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
        phis.append(dict(net.named_parameters()))
    out = learner.meta_loss(batch)
    learner.outer_update(out, torch.optim.SGD(learner.parameters(), lr=0.0), None)
    for n, p in learner.net.named_parameters():
        mean_phi = torch.stack([phi[n].detach() for phi in phis]).mean(0)
        torch.testing.assert_close(p.detach(), theta[n] + 0.68 * (mean_phi - theta[n]), rtol=1e-4, atol=1e-5)


def test_reptile_non_transductive_predicts_each_query_alone():
    """Non-transductive outputs of one query image do not depend on the other query images."""
    torch.manual_seed(0)
    learner = Reptile(
        small_conv(),
        "classification",
        5,
        inner_steps=2,
        eval_inner_steps=2,
        evaluation="non_transductive",
        batching="loop",
    )
    batch = image_batch(tasks=1)
    with torch.no_grad():
        full = learner.predict(batch[0])
        changed = batch[0]
        changed.query_x = changed.query_x.clone()
        changed.query_x[1:] = torch.rand_like(changed.query_x[1:])
        alone = learner.predict(changed)
        learner.evaluation = "transductive"
        transductive = learner.predict(changed)
    torch.testing.assert_close(alone[0], full[0])
    assert not torch.allclose(transductive[0], full[0])


# --- MAML++ schedules --------------------------------------------------------------------------
def test_derivative_order_annealing_switches_at_the_configured_iteration():
    torch.manual_seed(0)
    learner = MAMLPlusPlus(
        small_conv(),
        "classification",
        5,
        inner_lr=0.4,
        inner_steps=2,
        multi_step_loss=False,
        per_layer_inner_lr=False,
        per_step_batch_norm=False,
        first_order_iterations=3,
        batching="loop",
    )
    reference_fo = copy.deepcopy(learner)
    reference_fo.first_order = True
    reference_so = copy.deepcopy(learner)
    reference_so.first_order_iterations = 0
    batch = image_batch()
    orders = []
    for iteration in (1, 3, 4, 10):
        learner.set_progress(iteration, 10)
        orders.append(learner.second_order)
    assert orders == [False, False, True, True]
    learner.set_progress(3, 10)
    fo = meta_grads(learner, batch, "loop")
    learner.set_progress(4, 10)
    so = meta_grads(learner, batch, "loop")
    for key, grad in meta_grads(reference_fo, batch, "loop").items():
        torch.testing.assert_close(fo[key], grad)
    for key, grad in meta_grads(reference_so, batch, "loop").items():
        torch.testing.assert_close(so[key], grad)


def test_multi_step_loss_weights_anneal_towards_the_last_step():
    learner = MAMLPlusPlus(small_conv(), "classification", 5, inner_steps=4, multi_step_loss_iterations=100)
    learner.set_progress(0, 1000)
    assert learner.step_weights() == pytest.approx([0.25] * 4)
    learner.set_progress(50, 1000)
    assert learner.step_weights() == pytest.approx([0.125] * 3 + [0.625])
    learner.set_progress(500, 1000)
    assert learner.step_weights() == pytest.approx([0.0075] * 3 + [1 - 3 * 0.0075])


def per_step_running_maml(steps: int = 2) -> MAMLPlusPlus:
    torch.manual_seed(0)
    return MAMLPlusPlus(
        small_conv(),
        "classification",
        5,
        inner_lr=0.4,
        inner_steps=steps,
        multi_step_loss=False,
        per_layer_inner_lr=False,
        first_order_iterations=0,
        batch_norm="running",
    )


def test_per_step_running_statistics_follow_each_inner_step():
    """BNRS: one training task with 2 inner steps; step 0's statistics see only the support pass at theta, so
    the first BatchNorm's running mean and (unbiased) variance follow from the first convolution by hand."""
    learner = per_step_running_maml()
    learner.train()
    batch = image_batch(tasks=1)
    learner.meta_loss(batch)
    stats = dict(learner.bn_stats.named_buffers())
    conv = learner.net[0].encoder[0][0]
    h = torch.nn.functional.conv2d(batch.support_x[0], conv.weight, conv.bias, padding=1).detach()
    momentum = learner.net[0].encoder[0][1].momentum
    torch.testing.assert_close(stats["0__encoder__0__1__running_mean"][0], momentum * h.mean((0, 2, 3)))
    torch.testing.assert_close(stats["0__encoder__0__1__running_var"][0], (1 - momentum) + momentum * h.var((0, 2, 3)))
    # step 1 saw the support pass after one step and the query pass: other statistics than step 0's
    assert not torch.allclose(stats["0__encoder__0__1__running_mean"][1], stats["0__encoder__0__1__running_mean"][0])
    assert learner.net[0].encoder[0][1].running_mean.abs().max() == 0  # the shared statistics stay unused


def test_evaluation_normalises_each_step_with_its_own_statistics():
    """In eval mode the output of inner step s equals a plain network carrying step s's statistics and weights."""
    learner = per_step_running_maml(steps=3)
    for name, buffer in learner.bn_stats.named_buffers():
        buffer.copy_(torch.rand_like(buffer) + (0.5 if name.endswith("var") else -0.5))
    with torch.no_grad():
        for weights in learner.bn_steps.values():
            weights.add_(torch.randn_like(weights))
    learner.eval()
    x = image_batch(tasks=1).query_x[0]
    theta = learner.theta(detach=True)
    for step in range(3):
        plain = copy.deepcopy(learner.net).eval()
        for name, buffer in plain.named_buffers():
            if name in learner.stat_names:
                buffer.copy_(learner.bn_stats.get_buffer(name.replace(".", "__"))[step])
        for name, p in plain.named_parameters():
            if name.replace(".", "__") in learner.bn_steps:
                p.data.copy_(learner.bn_steps[name.replace(".", "__")][step])
        torch.testing.assert_close(learner.forward_with(theta, {}, x, step), plain(x))
    assert not torch.allclose(learner.forward_with(theta, {}, x, 0), learner.forward_with(theta, {}, x, 1))


# --- each one learns ----------------------------------------------------------------------------
def fit(learner, sampler, steps: int, lr: float = 1e-3) -> None:
    optimizer = torch.optim.Adam(learner.parameters(), lr=lr)
    learner.train()
    for i in range(1, steps + 1):
        learner.set_progress(i, steps)
        learner.outer_update(learner.meta_loss(sampler.train_batch()), optimizer, None)


@pytest.fixture(scope="module")
def glyphs():
    return load_glyphs(train_classes=40, val_classes=10, test_classes=10)


GLYPH_LEARNERS = {  # small and on the loop path (auto would time both paths first): seconds each
    "anil": lambda s: ANIL(Conv4(s, 16), "classification", 5, eval_inner_steps=5, batching="loop"),
    "metasgd": lambda s: MetaSGD(Conv4(s, 16), "classification", 5, inner_lr=0.4, eval_inner_steps=1, batching="loop"),
    "maml++": lambda s: MAMLPlusPlus(
        Conv4(s, 16),
        "classification",
        5,
        inner_lr=0.4,
        inner_steps=2,
        eval_inner_steps=2,
        multi_step_loss_iterations=20,
        first_order_iterations=20,
        batching="loop",
    ),
    "reptile": lambda s: Reptile(
        Conv4(s, 16),
        "classification",
        5,
        inner_optimizer="adam",
        inner_lr=0.003,
        inner_steps=3,
        inner_data="support",
        eval_inner_steps=5,
        batching="loop",
    ),
}


@pytest.mark.parametrize("name", GLYPH_LEARNERS)
def test_learns_glyphs_above_chance(glyphs, name):
    torch.manual_seed(0)
    sampler = EpisodeSampler(glyphs, q_query=5, tasks_per_batch=2, val_episodes=10, test_episodes=50)
    learner = GLYPH_LEARNERS[name](glyphs.input_shape)
    fit(learner, sampler, 40)
    after = evaluate(learner, sampler, "test").mean
    assert after > 0.45, f"{name}: accuracy {after:.3f} is not clearly above chance (0.2)"


SINUSOID_LEARNERS = {  # vmap: much faster than the loop for this tiny MLP
    "maml": lambda: MAML(MLP((1,)), "regression", 1, inner_lr=0.01, eval_inner_steps=5, batching="vmap"),
    "fomaml": lambda: MAML(
        MLP((1,)), "regression", 1, inner_lr=0.01, eval_inner_steps=5, first_order=True, batching="vmap"
    ),
    "anil": lambda: ANIL(MLP((1,)), "regression", 1, inner_lr=0.01, eval_inner_steps=5, batching="vmap"),
    "metasgd": lambda: MetaSGD(MLP((1,)), "regression", 1, inner_lr=0.01, eval_inner_steps=1, batching="vmap"),
    "reptile": lambda: Reptile(
        MLP((1,)),
        "regression",
        1,
        inner_optimizer="sgd",
        inner_lr=0.01,
        inner_steps=5,
        eval_inner_steps=5,
        batching="vmap",
    ),
}


@pytest.mark.parametrize("name", SINUSOID_LEARNERS)
def test_lowers_sinusoid_mse(name):
    torch.manual_seed(0)
    sampler = EpisodeSampler(SinusoidTasks(), k_shot=10, q_query=10, tasks_per_batch=10, test_episodes=100)
    learner = SINUSOID_LEARNERS[name]()
    before = evaluate(learner, sampler, "test").mean
    fit(learner, sampler, 200, lr=3e-3)
    after = evaluate(learner, sampler, "test").mean
    assert after < 0.7 * before, f"{name}: MSE {before:.3f} -> {after:.3f}"
