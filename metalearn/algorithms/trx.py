"""TRX: Temporal-Relational CrossTransformers (Perrett, Masullo, Burghardt, Mirmehdi & Damen, CVPR 2021)."""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import torch
from torch import Tensor, nn

from metalearn.algorithms.base import EpisodeClassifier
from metalearn.episode import EpisodeBatch
from metalearn.errors import ConfigError, DataError


def frame_tuples(frames: int, cardinality: int) -> Tensor:
    """Every ordered tuple of `cardinality` distinct frames, i < j (< k), in lexicographic order: long
    [C(frames, cardinality), cardinality]."""
    return torch.tensor(list(itertools.combinations(range(frames), cardinality)), dtype=torch.long)


def sinusoidal_positions(frames: int, dim: int) -> Tensor:
    """The Transformer's positional encoding (Vaswani et al. 2017): [frames, dim], sin on even and cos on odd
    features, wavelengths from 2 pi to 10000 * 2 pi."""
    position = torch.arange(frames, dtype=torch.float32)[:, None]
    rate = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(frames, dim)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate[: dim // 2])
    return table


def by_class(support: Tensor, labels: Tensor, n_way: int) -> Tensor:
    """Support items grouped by class: [B, S, ...] with labels [B, S] -> [B, n_way, S / n_way, ...]. Every class
    must have the same number of support items (as every episode of the sampler has)."""
    b, s = labels.shape
    counts = torch.nn.functional.one_hot(labels, n_way).sum(1)
    if s % n_way or bool((counts != s // n_way).any()):
        raise DataError(f"TRX needs the same number of support clips in every class; got {counts.tolist()}")
    order = labels.argsort(dim=1, stable=True)
    picked = support.gather(1, order.view(b, s, *(1,) * (support.dim() - 2)).expand_as(support))
    return picked.view(b, n_way, s // n_way, *support.shape[2:])


def cross_attention(query_keys: Tensor, support_keys: Tensor, support_values: Tensor) -> tuple[Tensor, Tensor]:
    """Each query tuple's attention over every tuple of each class's support clips, and the prototypes it builds.

    Args:
        query_keys: [B, Q, P, d], the keys of each query clip's P tuples.
        support_keys, support_values: [B, n_way, K, d], the keys and values of the K = k_shot * P tuples of each
            class's support clips.

    Returns: weights [B, Q, P, n_way, K] (softmax over K of the scaled dot products, summing to 1 for each query
    tuple and class) and prototypes [B, Q, P, n_way, d] (the weighted sums of the class's support values).
    """
    scores = torch.einsum("bqpd,bnkd->bqpnk", query_keys, support_keys) / math.sqrt(query_keys.shape[-1])
    weights = scores.softmax(-1)
    return weights, torch.einsum("bqpnk,bnkd->bqpnd", weights, support_values)


class TRX(EpisodeClassifier):
    """Temporal-Relational CrossTransformers: each clip is represented by its tuples of frames (every ordered pair,
    every ordered triple, ...), a tuple being its frames' features (plus a positional encoding) concatenated. For
    each query tuple and class, attention over all tuples of all the class's support clips builds a query-specific
    class prototype from their values; the distance of query and class is the squared distance of the query
    tuples' values to their prototypes, averaged over tuples; logits are minus the distances, averaged over the
    tuple cardinalities.

    Keys and values are linear maps of a tuple's features (the same key map for query and support tuples), keys
    are layer-normalised, and attention scores are scaled by 1/sqrt(dim), as in the authors' code.

    Args:
        backbone: a per-frame embedding, clips [N, T, C, H, W] -> [N, T, D] (an image backbone on a clip data set).
        task: "classification".
        n_way: classes per episode where the episode does not say.
        cardinalities (list of ints, [2, 3]): the tuple sizes (the paper's best, {2, 3}).
        dim (int, 1152): the key and value size (the paper's).
        position_scale (float, 0.1): the positional encoding's scale before it is added to the frame features.
        dropout (float, 0.1): dropout on the frame features (training only).
        batch_norm (str, "running"): "running" (standard BatchNorm) or "transductive".

    Shapes: support [B, S, T, C, H, W] with S = n_way * k_shot, labels [B, S], query [B, Q, T, C, H, W]; per
    cardinality w there are P = C(T, w) tuples, attention scores [B, Q, P, n_way, k_shot * P]; logits
    [B, Q, n_way].

    References:
        Perrett, Masullo, Burghardt, Mirmehdi & Damen, "Temporal-Relational CrossTransformers for Few-Shot Action
        Recognition", CVPR 2021.
    """

    clips = "only"

    def __init__(
        self,
        backbone: nn.Module,
        task: str,
        n_way: int,
        cardinalities: Sequence[int] = (2, 3),
        dim: int = 1152,
        position_scale: float = 0.1,
        dropout: float = 0.1,
        batch_norm: str = "running",
    ) -> None:
        super().__init__(backbone, task, n_way, batch_norm)
        features = backbone.out_features
        self.frames = int(backbone.frames)
        self.cardinalities = [int(c) for c in cardinalities]
        if max(self.cardinalities) > self.frames:
            raise ConfigError(
                f"algorithm.cardinalities={self.cardinalities} has tuples longer than the clips' {self.frames} frames"
            )
        self.dim = dim
        self.register_buffer("positions", position_scale * sinusoidal_positions(self.frames, features))
        self.dropout = nn.Dropout(dropout)
        self.keys = nn.ModuleList(nn.Linear(c * features, dim) for c in self.cardinalities)
        self.values = nn.ModuleList(nn.Linear(c * features, dim) for c in self.cardinalities)
        self.key_norm = nn.ModuleList(nn.LayerNorm(dim) for _ in self.cardinalities)
        for c in self.cardinalities:
            self.register_buffer(f"tuples{c}", frame_tuples(self.frames, c), persistent=False)

    def tuple_features(self, frames: Tensor, cardinality: int) -> Tensor:
        """Concatenated frame features of every tuple: [..., T, D] -> [..., P, cardinality * D]."""
        return frames[..., getattr(self, f"tuples{cardinality}"), :].flatten(-2)

    def predict_batch(self, batch: EpisodeBatch) -> Tensor:
        support, query = (self.dropout(f + self.positions) for f in self.embed_episodes(batch))  # [B, S|Q, T, D]
        n_way = self.ways(batch)
        logits = []
        for c, key, value, norm in zip(self.cardinalities, self.keys, self.values, self.key_norm):
            s_tuples = by_class(self.tuple_features(support, c), batch.support_y, n_way).flatten(2, 3)  # [B, n, kP, .]
            q_tuples = self.tuple_features(query, c)  # [B, Q, P, c * D]
            _, prototypes = cross_attention(norm(key(q_tuples)), norm(key(s_tuples)), value(s_tuples))
            distances = (value(q_tuples)[:, :, :, None] - prototypes).pow(2).sum(-1).mean(2)  # [B, Q, n]
            logits.append(-distances)
        return torch.stack(logits).mean(0)
