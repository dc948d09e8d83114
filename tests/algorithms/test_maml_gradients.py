"""MAML's meta-gradients against hand-derived values on a one-parameter-pair linear model.

Model f(x) = w x + b, squared error on one support point (xs, ys) and one query point (xq, yq),
inner learning rate a, one inner step:
    r_s = w xs + b - ys,   w' = w - 2 a r_s xs,   b' = b - 2 a r_s,   r_q = w' xq + b' - yq.
First order (FOMAML) takes the query gradient at the adapted parameters:
    dL/dw = 2 r_q xq,   dL/db = 2 r_q.
Second order multiplies by the Jacobian of (w', b') with respect to (w, b),
    [[1 - 2a xs^2, -2a xs], [-2a xs, 1 - 2a]], so
    dL/dw = 2 r_q (xq (1 - 2a xs^2) - 2a xs),   dL/db = 2 r_q (1 - 2a - 2a xs xq).
"""

from __future__ import annotations

import pytest
import torch

from metalearn.algorithms.maml import MAML
from metalearn.episode import EpisodeBatch
from tests.support import Identity

W, B, XS, YS, XQ, YQ, A = 0.5, -0.3, 1.5, 2.0, -1.0, 0.7, 0.1


def meta_gradient(first_order: bool) -> tuple[float, float]:
    learner = MAML(Identity(), "regression", 1, inner_lr=A, inner_steps=1, first_order=first_order)
    with torch.no_grad():
        learner.head.weight.fill_(W)
        learner.head.bias.fill_(B)
    t = lambda v: torch.tensor([[[v]]], dtype=torch.float32)  # noqa: E731  [B=1, K=1, D=1]
    batch = EpisodeBatch(t(XS), t(YS), t(XQ), t(YQ))
    learner.meta_loss(batch).loss.backward()
    return float(learner.head.weight.grad), float(learner.head.bias.grad)


def adapted_query_residual() -> float:
    r_s = W * XS + B - YS
    w1, b1 = W - 2 * A * r_s * XS, B - 2 * A * r_s
    return w1 * XQ + b1 - YQ


def test_second_order_meta_gradient_matches_hand_derivation():
    r_q = adapted_query_residual()
    expected = (2 * r_q * (XQ * (1 - 2 * A * XS**2) - 2 * A * XS), 2 * r_q * (1 - 2 * A - 2 * A * XS * XQ))
    assert meta_gradient(first_order=False) == pytest.approx(expected, rel=1e-5)


def test_first_order_meta_gradient_matches_formula():
    r_q = adapted_query_residual()
    assert meta_gradient(first_order=True) == pytest.approx((2 * r_q * XQ, 2 * r_q), rel=1e-5)


def test_first_order_and_second_order_differ_here():
    """Guards the two tests above against a model where both formulas coincide."""
    assert meta_gradient(True)[0] != pytest.approx(meta_gradient(False)[0], rel=1e-3)
