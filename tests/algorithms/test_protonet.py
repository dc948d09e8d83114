"""ProtoNet's prototypes, logits and loss on a tiny episode, against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from metalearn.algorithms.protonet import ProtoNet, prototypes
from metalearn.episode import Episode, EpisodeBatch
from tests.support import Identity


def episode() -> Episode:
    # class 0: (0, 0), (2, 0) -> prototype (1, 0); class 1: (0, 2), (0, 4) -> prototype (0, 3)
    support_x = torch.tensor([[0.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
    support_y = torch.tensor([0, 1, 0, 1])
    query_x = torch.tensor([[1.0, 1.0], [0.0, 4.0]], dtype=torch.float64)
    query_y = torch.tensor([0, 1])
    return Episode(support_x, support_y, query_x, query_y)


def test_prototypes_are_class_means():
    e = episode()
    expected = torch.tensor([[1.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    torch.testing.assert_close(prototypes(e.support_x, e.support_y, 2), expected, rtol=0, atol=0)


def test_logits_are_negative_squared_distances_to_the_prototypes():
    # query (1, 1): |(0, 1)|^2 = 1 to prototype 0, |(1, -2)|^2 = 5 to prototype 1
    # query (0, 4): |(-1, 4)|^2 = 17 and |(0, 1)|^2 = 1
    learner = ProtoNet(Identity(2), "classification", n_way=2)
    expected = torch.tensor([[-1.0, -5.0], [-17.0, -1.0]], dtype=torch.float64)
    torch.testing.assert_close(learner.predict(episode()), expected, rtol=0, atol=0)
    batch = EpisodeBatch.of(episode())
    torch.testing.assert_close(learner.predict_batch(batch), expected[None], rtol=0, atol=0)


def test_meta_loss_is_the_mean_query_cross_entropy():
    # cross-entropy of logits (-1, -5) for class 0: log(1 + e^-4); of (-17, -1) for class 1: log(1 + e^-16)
    learner = ProtoNet(Identity(2), "classification", n_way=2)
    out = learner.meta_loss(EpisodeBatch.of(episode()))
    expected = (math.log1p(math.exp(-4)) + math.log1p(math.exp(-16))) / 2
    assert float(out.loss) == pytest.approx(expected, rel=1e-12)
    assert out.metrics == {"loss": pytest.approx(expected, rel=1e-12), "accuracy": 1.0}
