"""TRX: the frame tuples it enumerates, its cross-attention's shapes and normalisation, and its logits in a case
small enough to work out by hand."""

from __future__ import annotations

import pytest
import torch

from metalearn.algorithms.trx import TRX, by_class, cross_attention, frame_tuples, sinusoidal_positions
from metalearn.episode import EpisodeBatch
from metalearn.errors import ConfigError
from tests.video.test_otam import PerFrameIdentity


def test_frame_tuples_are_the_ordered_pairs_and_triples():
    assert frame_tuples(4, 2).tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    assert frame_tuples(4, 3).tolist() == [[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]]
    assert len(frame_tuples(8, 2)) == 28 and len(frame_tuples(8, 3)) == 56  # C(8, 2), C(8, 3)


def test_positions_are_sines_and_cosines_of_the_frame_index():
    table = sinusoidal_positions(3, 4)
    t = torch.arange(3.0)
    assert torch.allclose(table[:, 0], torch.sin(t)) and torch.allclose(table[:, 1], torch.cos(t))
    assert torch.allclose(table[:, 2], torch.sin(t / 100)) and torch.allclose(table[:, 3], torch.cos(t / 100))


def test_by_class_groups_support_items_whatever_their_order():
    items = torch.tensor([[10, 11, 20, 12, 21, 22]])
    labels = torch.tensor([[0, 0, 1, 0, 1, 1]])
    assert by_class(items, labels, 2).tolist() == [[[10, 11, 12], [20, 21, 22]]]


def test_cross_attention_shapes_and_weights_summing_to_one_per_query_tuple_and_class():
    gen = torch.Generator().manual_seed(0)
    q, s, v = (torch.randn(*shape, generator=gen) for shape in ((2, 7, 28, 16), (2, 5, 3 * 28, 16), (2, 5, 84, 16)))
    weights, prototypes = cross_attention(q, s, v)
    assert weights.shape == (2, 7, 28, 5, 84) and prototypes.shape == (2, 7, 28, 5, 16)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 7, 28, 5))
    # the prototype of query tuple p for class n is the weighted sum of that class's values
    assert torch.allclose(prototypes[1, 3, 4, 2], weights[1, 3, 4, 2] @ v[1, 2], atol=1e-5)


def test_one_tuple_per_clip_and_one_shot_compares_query_and_support_values_directly():
    # T = 2 frames, cardinality 2: one tuple per clip; one shot: each class's attention has one entry, weight 1, so
    # the distance is the squared distance of the two clips' values
    learner = TRX(PerFrameIdentity(2, 3), "classification", 2, cardinalities=[2], dim=4, dropout=0.0)
    gen = torch.Generator().manual_seed(1)
    support = torch.randn(1, 2, 2, 3, 1, 1, generator=gen)
    query = torch.randn(1, 3, 2, 3, 1, 1, generator=gen)
    logits = learner.predict_batch(EpisodeBatch(support, torch.tensor([[1, 0]]), query, torch.zeros(1, 3).long(), 2))

    def value(clip: torch.Tensor) -> torch.Tensor:
        return learner.values[0]((clip.flatten(1) + learner.positions).flatten())

    with torch.no_grad():
        for i in range(3):
            expected = [-(value(query[0, i]) - value(support[0, j])).pow(2).sum() for j in (1, 0)]
            assert logits[0, i].tolist() == pytest.approx([float(e) for e in expected], rel=1e-5)


def test_tuples_longer_than_the_clips_are_refused():
    with pytest.raises(ConfigError, match=r"cardinalities=\[2, 5\] has tuples longer than the clips' 4 frames"):
        TRX(PerFrameIdentity(4, 3), "classification", 2, cardinalities=[2, 5])
