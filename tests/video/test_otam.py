"""OTAM's ordered alignment against a brute-force enumeration of every alignment path, and the learner's
logits against the alignment costs worked out directly."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from metalearn.algorithms.otam import OTAM, alignment_cost
from metalearn.episode import EpisodeBatch


def _all_paths(rows: int, cols: int) -> list[list[tuple[int, int]]]:
    """Every path from (0, 0) to (rows - 1, cols - 1) of the padded matrix: right, diagonally down-right, or
    straight down in the first and last (padded) columns."""
    paths = []

    def walk(path: list[tuple[int, int]]) -> None:
        r, c = path[-1]
        if (r, c) == (rows - 1, cols - 1):
            paths.append(list(path))
            return
        steps = [(r, c + 1), (r + 1, c + 1)] + ([(r + 1, c)] if c in (0, cols - 1) else [])
        for nr, nc in steps:
            if nr < rows and nc < cols:
                walk(path + [(nr, nc)])

    walk([(0, 0)])
    return paths


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.7])
def test_alignment_cost_is_the_soft_minimum_over_every_path(smoothing):
    gen = torch.Generator().manual_seed(3)
    distances = torch.rand(5, 3, 4, generator=gen, dtype=torch.float64)  # five 3x4 matrices
    padded = F.pad(distances, (1, 1))
    paths = _all_paths(3, 6)
    assert len(paths) > 20
    costs = torch.stack([sum(padded[:, r, c] for r, c in path) for path in paths])  # [paths, 5]
    expected = costs.amin(0) if smoothing == 0 else -smoothing * torch.logsumexp(-costs / smoothing, 0)
    assert torch.allclose(alignment_cost(distances, smoothing), expected, rtol=0, atol=1e-12)


def test_every_path_matches_each_column_frame_once_in_order():
    for path in _all_paths(3, 6):
        real = [(r, c) for r, c in path if 0 < c < 5]
        assert [c for _, c in real] == [1, 2, 3, 4]  # each support frame exactly once
        assert all(b[0] - a[0] in (0, 1) for a, b in zip(real, real[1:]))  # query frames in order, none skipped


def test_a_sequence_aligns_with_itself_at_no_cost_and_not_with_its_reversal():
    frames = F.normalize(torch.randn(6, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64), dim=-1)
    same = 1 - frames @ frames.T
    reversed_ = 1 - frames @ frames.flip(0).T
    assert float(alignment_cost(same, 0.0)) == pytest.approx(0.0, abs=1e-12)
    assert float(alignment_cost(reversed_, 0.0)) > 1.0


class PerFrameIdentity(torch.nn.Module):
    """Clips [N, T, D, 1, 1] -> frame features [N, T, D]."""

    def __init__(self, frames: int, dim: int) -> None:
        super().__init__()
        self.frames, self.out_features = frames, dim
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x.flatten(-3)


def test_otam_logits_are_minus_the_two_way_costs_averaged_over_each_class_shots():
    gen = torch.Generator().manual_seed(5)
    support = torch.randn(1, 4, 3, 6, 1, 1, generator=gen, dtype=torch.float64)  # 2 classes x 2 shots, 3 frames
    query = torch.randn(1, 2, 3, 6, 1, 1, generator=gen, dtype=torch.float64)
    labels = torch.tensor([[1, 0, 0, 1]])
    learner = OTAM(PerFrameIdentity(3, 6), "classification", 2, smoothing=0.1).double()
    logits = learner.predict_batch(EpisodeBatch(support, labels, query, torch.tensor([[0, 1]]), n_way=2))

    def cost(q: torch.Tensor, s: torch.Tensor) -> float:
        d = 1 - F.normalize(q.flatten(1), dim=-1) @ F.normalize(s.flatten(1), dim=-1).T
        return 0.5 * float(alignment_cost(d, 0.1) + alignment_cost(d.T, 0.1))

    for i in range(2):
        per_support = [cost(query[0, i], support[0, j]) for j in range(4)]
        expected = [-(per_support[1] + per_support[2]) / 2, -(per_support[0] + per_support[3]) / 2]
        assert logits[0, i].tolist() == pytest.approx(expected, abs=1e-12)
    logits.sum().backward()
    assert math.isfinite(float(learner.backbone.scale.grad))
