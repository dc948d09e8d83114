"""Prototypical Networks (Snell, Swersky & Zemel, NeurIPS 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metalearn.algorithms.base import EpisodeClassifier
from metalearn.algorithms.classes import class_means
from metalearn.episode import EpisodeBatch


def prototypes(embeddings: Tensor, labels: Tensor, n_way: int) -> Tensor:
    """Mean embedding per class: [..., S, D] with labels [..., S] in 0..n_way-1 -> [..., n_way, D]."""
    return class_means(embeddings, labels, n_way)


class ProtoNet(EpisodeClassifier):
    """Each class is represented by the mean embedding (prototype) of its support images; a query is
    classified by a softmax over negative squared Euclidean distances to the prototypes, or (distance="cosine")
    over their cosine similarities times a learned temperature (a scale the cosine's range [-1, 1] needs to give a
    confident softmax; Gidaris & Komodakis 2018, Chen et al. 2019).

    Defaults follow the paper: Conv4 embedding, Adam 1e-3, standard BatchNorm (batch statistics in
    training, running averages at test time). The number of ways is each episode's own, so training episodes may
    have more classes than test episodes (the paper trains Omniglot 60-way).

    Args:
        backbone: the embedding, images [N, C, H, W] -> [N, D].
        task: "classification" (the only kind it supports).
        n_way: classes per episode where the episode does not say.
        distance (str, "euclidean"): "euclidean" or "cosine".
        temperature (float, 10.0): the cosine logits' initial scale, learned with the backbone.
        batch_norm (str, "running"): "running" (standard BatchNorm) or "transductive".

    On video clips the embedding of a clip is the mean of its frames' features: the frame-averaging baseline of the
    few-shot video papers (e.g. Cao et al. 2020), blind to the order of the frames.

    Shapes: a batch of B episodes with support [B, S, C, H, W] (clips: [B, S, T, C, H, W]), labels [B, S], query
    [B, Q, C, H, W]; logits [B, Q, n_way].

    References:
        Snell, Swersky & Zemel, "Prototypical Networks for Few-shot Learning", NeurIPS 2017.
    """

    clips = "also"

    def __init__(
        self,
        backbone: nn.Module,
        task: str,
        n_way: int,
        distance: str = "euclidean",
        temperature: float = 10.0,
        batch_norm: str = "running",
    ) -> None:
        super().__init__(backbone, task, n_way, batch_norm)
        self.distance = distance
        if distance == "cosine":
            self.temperature = nn.Parameter(torch.tensor(float(temperature)))

    def predict_batch(self, batch: EpisodeBatch) -> Tensor:
        """Logits of each query for each class, [B, Q, n_way]."""
        support, query = self.embed_episodes(batch)
        if support.dim() == 4:  # clips: per-frame features [B, S, T, D], averaged over time
            support, query = support.mean(2), query.mean(2)
        protos = prototypes(support, batch.support_y, self.ways(batch))  # [B, n, D]
        if self.distance == "cosine":
            return self.temperature * F.normalize(query, dim=-1) @ F.normalize(protos, dim=-1).transpose(1, 2)
        return -(query[:, :, None] - protos[:, None]).pow(2).sum(-1)  # cdist's backward is NaN at 0
