"""OTAM: Ordered Temporal Alignment Module (Cao, Ji, Cao, Chang & Niebles, CVPR 2020)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metalearn.algorithms.base import EpisodeClassifier
from metalearn.algorithms.classes import class_means
from metalearn.episode import EpisodeBatch


def soft_minimum(values: list[Tensor], smoothing: float) -> Tensor:
    """-smoothing * log(sum(exp(-v / smoothing))) over the list, elementwise; the plain minimum at smoothing 0."""
    if len(values) == 1:
        return values[0]
    stacked = torch.stack(values)
    if smoothing == 0:
        return stacked.amin(0)
    return -smoothing * torch.logsumexp(-stacked / smoothing, dim=0)


def alignment_cost(distances: Tensor, smoothing: float) -> Tensor:
    """OTAM's soft alignment cost of ordered frame sequences: distances [..., Tq, Ts] -> [...].

    The matrix is padded with a zero column before the first and after the last column, and a path runs from
    the top-left cell to the bottom-right one. A step moves one column right, staying in its row or going one row
    down; in the two padded columns it may also go straight down. So each column's frame is matched, in order, to
    one row's frame, and rows before the first match and after the last are skipped at no cost. The cost is the
    soft minimum over all paths of the summed distances on the path, computed by dynamic programming (soft-DTW,
    Cuturi & Blondel 2017): exactly -smoothing * log(sum over paths of exp(-cost / smoothing)).
    """
    padded = F.pad(distances, (1, 1))
    rows, cols = padded.shape[-2:]
    above: list[Tensor] = []
    for r in range(rows):
        row: list[Tensor] = []
        for c in range(cols):
            before = []
            if c > 0:
                before.append(row[c - 1])  # from the left
                if r > 0:
                    before.append(above[c - 1])  # diagonal
            if r > 0 and c in (0, cols - 1):
                before.append(above[c])  # straight down, in a padded column only
            cell = padded[..., r, c]
            row.append(cell + soft_minimum(before, smoothing) if before else cell)
        above = row
    return above[-1]


class OTAM(EpisodeClassifier):
    """Ordered Temporal Alignment: a query clip's distance to a support clip is the soft cost of the best ordered
    alignment of their frames (alignment_cost on 1 - cosine similarity of frame features), taken both ways
    (query frames along support frames and the reverse) and averaged; a class's distance is the mean over its
    support clips, and the logits are minus the distances.

    Args:
        backbone: a per-frame embedding, clips [N, T, C, H, W] -> [N, T, D] (an image backbone on a clip data set).
        task: "classification".
        n_way: classes per episode where the episode does not say.
        smoothing (float, 0.1): the soft minimum's smoothing (lambda in the paper); 0 gives the hard minimum (DTW).
        batch_norm (str, "running"): "running" (standard BatchNorm) or "transductive".

    Shapes: support [B, S, T, C, H, W], labels [B, S], query [B, Q, T, C, H, W]; logits [B, Q, n_way].

    References:
        Cao, Ji, Cao, Chang & Niebles, "Few-Shot Video Classification via Temporal Alignment", CVPR 2020.
    """

    clips = "only"

    def __init__(
        self, backbone: nn.Module, task: str, n_way: int, smoothing: float = 0.1, batch_norm: str = "running"
    ) -> None:
        super().__init__(backbone, task, n_way, batch_norm)
        self.smoothing = smoothing

    def predict_batch(self, batch: EpisodeBatch) -> Tensor:
        support, query = (F.normalize(f, dim=-1) for f in self.embed_episodes(batch))  # [B, S|Q, T, D]
        distances = 1 - torch.einsum("bqtd,bsud->bqstu", query, support)  # [B, Q, S, T, T]
        cost = 0.5 * (
            alignment_cost(distances, self.smoothing) + alignment_cost(distances.transpose(-1, -2), self.smoothing)
        )  # [B, Q, S]
        per_class = class_means(cost.transpose(1, 2), batch.support_y, self.ways(batch))  # [B, n, Q]
        return -per_class.transpose(1, 2)
