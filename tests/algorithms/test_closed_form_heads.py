"""R2D2's ridge head and MetaOptNet's SVM head against independent solutions: the ridge solution in both of its
forms against torch.linalg.solve of the normal equations, and the SVM dual against a brute-force solver that
tries every active set of the KKT conditions on a tiny problem; the SVM's implicit gradient against finite
differences."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from metalearn.algorithms.metaoptnet import MetaOptNet
from metalearn.algorithms.r2d2 import R2D2, ridge_weights
from metalearn.algorithms.svm_dual import project_simplex, svm_dual
from metalearn.episode import Episode, EpisodeBatch
from tests.support import Identity


@pytest.mark.parametrize("s, d", [(4, 7), (9, 3)])  # fewer examples than features (Woodbury) and more
def test_ridge_weights_solve_the_normal_equations(s, d):
    torch.manual_seed(0)
    x, y = torch.randn(2, s, d, dtype=torch.float64), torch.randn(2, s, 3, dtype=torch.float64)
    lam = 0.7
    expected = torch.linalg.solve(
        x.transpose(1, 2) @ x + lam * torch.eye(d, dtype=torch.float64), x.transpose(1, 2) @ y
    )
    torch.testing.assert_close(ridge_weights(x, y, lam), expected, rtol=1e-10, atol=1e-12)


def test_r2d2_logits_are_the_scaled_ridge_predictions():
    torch.manual_seed(0)
    support_x, query_x = torch.randn(6, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    support_y = torch.tensor([0, 1, 2, 0, 1, 2])
    learner = R2D2(Identity(4), "classification", 3, lam=0.5, scale=2.0, bias=0.25).double()
    logits = learner.predict(Episode(support_x, support_y, query_x, torch.tensor([0, 1, 2]), n_way=3))
    xs, xq = F.pad(support_x, (0, 1), value=1.0), F.pad(query_x, (0, 1), value=1.0)  # the bias feature
    lam = float(learner.log_lam.detach().exp())  # 0.5 up to the float32 rounding of its logarithm
    w = torch.linalg.solve(xs.T @ xs + lam * torch.eye(5, dtype=torch.float64), xs.T @ F.one_hot(support_y).double())
    torch.testing.assert_close(logits, 2.0 * xq @ w + 0.25, rtol=1e-10, atol=1e-12)
    assert {n for n, _ in learner.named_parameters()} == {"log_lam", "scale", "bias"}  # all learned
    assert lam == pytest.approx(0.5, rel=1e-7)


def test_simplex_projection_against_its_definition():
    v = torch.tensor([[0.9, 0.4, -0.2], [2.0, 2.0, 2.0], [-1.0, 5.0, 0.0]], dtype=torch.float64)
    # row 1: theta = 0.15 -> (0.75, 0.25, 0); row 2: equal -> a third each; row 3: theta = 4 -> (0, 1, 0)
    expected = torch.tensor([[0.75, 0.25, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.0, 1.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(project_simplex(v, 1.0), expected, rtol=1e-12, atol=1e-12)


def brute_force_dual(kernel: torch.Tensor, one_hot: torch.Tensor, c: float, ridge: float) -> torch.Tensor:
    """The QP by enumeration: for every choice of free entries per row (the rest at their bounds: tau_ik = 0 for
    k != y_i, or C at k = y_i), solve the equality-constrained problem by its KKT linear system, keep the feasible
    candidates, and return the one of least objective. Exact for tiny problems; shares no code with the solver."""
    s, n = one_hot.shape
    q = torch.kron(kernel, torch.eye(n, dtype=kernel.dtype)) + ridge * torch.eye(s * n, dtype=kernel.dtype)
    p = -one_hot.reshape(-1)
    upper = (c * one_hot).reshape(-1)
    best, best_value = None, math.inf
    row_choices = [[m for r in range(1, n + 1) for m in itertools.combinations(range(n), r)]] * s
    for free_sets in itertools.product(*row_choices):
        free = [i * n + k for i, ks in enumerate(free_sets) for k in ks]
        fixed = [j for j in range(s * n) if j not in free]
        # unknowns: the free entries and one multiplier per row (sum_k tau_ik = 0)
        a = torch.zeros(s, s * n, dtype=kernel.dtype)
        for i in range(s):
            a[i, i * n : (i + 1) * n] = 1
        tau = upper.clone()
        qf, af = q[free][:, free], a[:, free]
        rhs_top = -p[free] - q[free][:, fixed] @ upper[fixed]
        rhs_bottom = -a[:, fixed] @ upper[fixed]
        kkt = torch.cat([torch.cat([qf, af.T], 1), torch.cat([af, torch.zeros(s, s, dtype=kernel.dtype)], 1)])
        try:
            solution = torch.linalg.solve(kkt, torch.cat([rhs_top, rhs_bottom]))
        except RuntimeError:
            continue
        tau[free] = solution[: len(free)]
        if (tau > upper + 1e-10).any():
            continue
        value = float(0.5 * tau @ q @ tau + p @ tau)
        if value < best_value - 1e-12:
            best, best_value = tau, value
    assert best is not None
    return best.view(s, n)


def test_svm_dual_matches_a_brute_force_solver():
    torch.manual_seed(3)
    x = torch.randn(4, 3, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 0])
    one_hot = F.one_hot(labels, 3).double()
    kernel = x @ x.T
    for c, ridge in ((0.1, 1.0), (1.0, 0.1), (10.0, 0.05)):
        tau = svm_dual(kernel[None], one_hot[None], c, ridge, max_iter=20000, tol=1e-14)[0]
        torch.testing.assert_close(tau, brute_force_dual(kernel, one_hot, c, ridge), rtol=0, atol=1e-8)
        assert torch.allclose(tau.sum(-1), torch.zeros(4, dtype=torch.float64), atol=1e-12)
        assert (tau <= c * one_hot + 1e-12).all()


def test_svm_dual_gradient_matches_finite_differences():
    torch.manual_seed(0)
    x = torch.randn(1, 6, 4, dtype=torch.float64, requires_grad=True)
    one_hot = F.one_hot(torch.tensor([[0, 1, 2, 0, 1, 2]]), 3).double()
    # a generic point (no entry exactly at a bound's switch), so the active set is locally constant
    assert torch.autograd.gradcheck(
        lambda x: svm_dual(x @ x.transpose(1, 2), one_hot, 0.5, 0.1, 20000, 1e-14), (x,), eps=1e-6, atol=1e-6
    )


def test_metaoptnet_logits_are_the_svm_scores_scaled():
    torch.manual_seed(0)
    support_x, query_x = torch.randn(4, 4, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    support_y = torch.tensor([0, 1, 2, 0])
    learner = MetaOptNet(Identity(4), "classification", 3, c=0.5, ridge=0.2, scale=3.0, tol=1e-14).double()
    batch = EpisodeBatch.of(Episode(support_x, support_y, query_x, torch.tensor([0, 1]), n_way=3))
    tau = brute_force_dual(support_x @ support_x.T, F.one_hot(support_y).double(), 0.5, 0.2)
    torch.testing.assert_close(learner.predict_batch(batch)[0], 3.0 * query_x @ support_x.T @ tau, rtol=1e-7, atol=1e-8)
    out = learner.meta_loss(batch)
    out.loss.backward()
    assert learner.scale.grad is not None and torch.isfinite(learner.scale.grad)
