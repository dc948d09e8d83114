"""The metric learners' outputs on tiny episodes against values worked out by hand: ProtoNet's cosine logits,
Matching Networks' attention and class probabilities, Relation Networks' class sums and relation scores; each
learner takes the number of ways from the episode, so it trains and tests on episodes of different shapes."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from metalearn.algorithms.classes import class_sums
from metalearn.algorithms.matchingnet import FullContextEmbedding, MatchingNet, attention, class_log_probs
from metalearn.algorithms.protonet import ProtoNet
from metalearn.algorithms.relationnet import RelationModule, RelationNet
from metalearn.episode import Episode, EpisodeBatch
from metalearn.errors import ConfigError
from tests.support import Identity


def test_cosine_protonet_scales_the_cosine_to_each_prototype():
    # prototypes: class 0 (1, 0) (mean of (2, 0) and (0, 0)... (2, 0), (0, 0) -> (1, 0)); class 1: (0, 3)
    support_x = torch.tensor([[2.0, 0.0], [0.0, 2.0], [0.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
    episode = Episode(
        support_x, torch.tensor([0, 1, 0, 1]), torch.tensor([[1.0, 1.0]], dtype=torch.float64), torch.tensor([0])
    )
    learner = ProtoNet(Identity(2), "classification", 2, distance="cosine", temperature=10.0).double()
    # cos((1, 1), (1, 0)) = cos((1, 1), (0, 3)) = 1 / sqrt(2)
    expected = torch.full((1, 2), 10 / math.sqrt(2), dtype=torch.float64)
    torch.testing.assert_close(learner.predict(episode), expected, rtol=1e-12, atol=0)
    assert [name for name, _ in learner.named_parameters()] == ["temperature"]  # learned


def test_matching_attention_is_a_softmax_of_cosine_similarities():
    support = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    query = torch.tensor([[3.0, 0.0]], dtype=torch.float64)
    # cosines 1, 0, 1/sqrt(2): weights e^1, e^0, e^0.7071 over their sum
    raw = torch.tensor([math.e, 1.0, math.exp(1 / math.sqrt(2))], dtype=torch.float64)
    weights = attention(query, support)
    torch.testing.assert_close(weights, (raw / raw.sum())[None], rtol=1e-12, atol=0)
    # labels 0, 1, 0: P(0) = (e + e^0.7071) / sum, P(1) = 1 / sum
    log_probs = class_log_probs(weights, torch.tensor([0, 1, 0]), 2)
    expected = torch.tensor([[(raw[0] + raw[2]) / raw.sum(), raw[1] / raw.sum()]], dtype=torch.float64).log()
    torch.testing.assert_close(log_probs, expected, rtol=1e-12, atol=0)


def test_matchingnet_loss_is_the_cross_entropy_of_the_attention_distribution():
    support_x = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    query_x = torch.tensor([[2.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    batch = EpisodeBatch.of(Episode(support_x, torch.tensor([0, 1]), query_x, torch.tensor([0, 1])))
    batch.n_way = 2
    out = MatchingNet(Identity(2), "classification", 2).meta_loss(batch)
    # query (2, 0): P(0) = e / (e + 1); query (1, 1): P(1) = 1/2
    expected = (-math.log(math.e / (math.e + 1)) - math.log(0.5)) / 2
    assert float(out.loss) == pytest.approx(expected, rel=1e-12)


def test_full_context_embedding_follows_the_papers_recurrences():
    """The attention LSTM's K steps written out one by one, against the module."""
    torch.manual_seed(0)
    fce = FullContextEmbedding(3, steps=2).double()
    support, query = torch.randn(1, 4, 3, dtype=torch.float64), torch.randn(1, 2, 3, dtype=torch.float64)
    g, f = fce(support, query)
    both, _ = fce.support_lstm(support)
    torch.testing.assert_close(g, support + both[..., :3] + both[..., 3:])
    for i in range(2):
        x = query[0, i : i + 1]
        h, c, read = torch.zeros_like(x), torch.zeros_like(x), torch.zeros_like(x)
        for _ in range(2):
            h_hat, c = fce.query_cell(torch.cat([x, read], -1), (h, c))
            h = h_hat + x
            a = torch.softmax(h @ g[0].T, dim=-1)
            read = a @ g[0]
        torch.testing.assert_close(f[0, i : i + 1], h)


def test_relation_class_representation_is_the_sum_of_support_maps():
    maps = torch.arange(2 * 3 * 1 * 2 * 2, dtype=torch.float64).view(2, 3, 1, 2, 2)  # B=2, S=3, maps 1x2x2
    labels = torch.tensor([[0, 1, 0], [1, 1, 0]])
    sums = class_sums(maps, labels, 2)
    torch.testing.assert_close(sums[0, 0], maps[0, 0] + maps[0, 2])
    torch.testing.assert_close(sums[0, 1], maps[0, 1])
    torch.testing.assert_close(sums[1, 1], maps[1, 0] + maps[1, 1])
    torch.testing.assert_close(sums[1, 0], maps[1, 2])


class Maps(nn.Module):
    """An image backbone that keeps its input as the feature map (C, H, W) = (1, 2, 2)."""

    feature_shape = (1, 2, 2)
    out_features = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def test_relation_scores_apply_the_module_to_each_query_class_pair():
    torch.manual_seed(0)
    learner = RelationNet(Maps(), "classification", 3, relation_channels=4).double().eval()
    support_x = torch.randn(6, 1, 2, 2, dtype=torch.float64)
    support_y = torch.tensor([0, 1, 2, 0, 1, 2])
    query_x = torch.randn(2, 1, 2, 2, dtype=torch.float64)
    batch = EpisodeBatch.of(Episode(support_x, support_y, query_x, torch.tensor([0, 2])))
    batch.n_way = 3
    scores = learner.predict_batch(batch)[0]
    for q in range(2):
        for c in range(3):
            pair = torch.cat([query_x[q], support_x[c] + support_x[c + 3]])[None]  # the class's 2 shots summed
            torch.testing.assert_close(scores[q, c], learner.relation(pair)[0])
    # the loss: mean squared error of the scores against one-hot targets
    out = learner.meta_loss(batch)
    target = torch.tensor([[1.0, 0, 0], [0, 0, 1.0]], dtype=torch.float64)
    expected = float((learner.predict_batch(batch)[0] - target).pow(2).mean().detach())
    assert float(out.loss.detach()) == pytest.approx(expected, rel=1e-12)


def test_relation_module_pools_only_maps_that_can_be_halved():
    assert RelationModule((64, 5, 5))(torch.randn(2, 128, 5, 5)).shape == (2,)  # 5 -> 2 -> 1, the paper's
    assert RelationModule((64, 1, 1))(torch.randn(2, 128, 1, 1)).shape == (2,)  # Conv4 on 28x28: no pooling


def test_relationnet_refuses_flat_features():
    with pytest.raises(ConfigError, match="feature maps.*model=conv4"):
        RelationNet(Identity(4), "classification", 5)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ProtoNet(Identity(2), "classification", 60),
        lambda: ProtoNet(Identity(2), "classification", 60, distance="cosine"),
        lambda: MatchingNet(Identity(2), "classification", 60, fce=True),
        lambda: RelationNet(Maps(), "classification", 60, relation_channels=4),
    ],
)
def test_metric_learners_take_the_ways_from_the_episode(make):
    """Trained on 60-way episodes, scored on 5-way ones: the output has the episode's ways."""
    learner = make().double()
    dim = 4 if isinstance(learner, RelationNet) else 2
    shape = (1, 2, 2) if dim == 4 else (2,)
    for ways in (5, 3):
        support_y = torch.arange(ways).repeat(2)
        batch = EpisodeBatch.of(
            Episode(
                torch.randn(2 * ways, *shape, dtype=torch.float64),
                support_y,
                torch.randn(4, *shape, dtype=torch.float64),
                torch.zeros(4, dtype=torch.long),
            )
        )
        batch.n_way = ways
        assert learner.predict_batch(batch).shape == (1, 4, ways)


def test_matching_attention_with_a_temperature_scales_the_cosines():
    support = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    query = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    # cosines 1 and 0, times 5: weights e^5 / (e^5 + 1) and 1 / (e^5 + 1)
    expected = torch.tensor([[math.exp(5) / (math.exp(5) + 1), 1 / (math.exp(5) + 1)]], dtype=torch.float64)
    torch.testing.assert_close(attention(query, support, 5.0), expected, rtol=1e-12, atol=0)
    learner = MatchingNet(Identity(2), "classification", 2, temperature=5.0)
    assert [name for name, _ in learner.named_parameters()] == ["temperature"]  # learned
