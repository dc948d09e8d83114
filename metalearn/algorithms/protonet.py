"""Prototypical Networks (Snell, Swersky & Zemel, NeurIPS 2017)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from metalearn.algorithms.base import MetaLearner, StepOutput, set_batch_norm_mode, task_loss
from metalearn.episode import Episode, EpisodeBatch


def prototypes(embeddings: Tensor, labels: Tensor, n_way: int) -> Tensor:
    """Mean embedding per class: [S, D] with labels in 0..n_way-1 -> [n_way, D]."""
    sums = embeddings.new_zeros(n_way, embeddings.shape[-1]).index_add_(0, labels, embeddings)
    counts = torch.bincount(labels, minlength=n_way).clamp_min(1).to(embeddings.dtype)
    return sums / counts[:, None]


class ProtoNet(MetaLearner):
    """Each class is represented by the mean embedding (prototype) of its support images; a query is
    classified by a softmax over negative squared Euclidean distances to the prototypes.

    Defaults follow the paper: Conv4 embedding, Adam 1e-3, standard BatchNorm (batch statistics in
    training, running averages at test time).

    Args:
        backbone: the embedding, images [N, C, H, W] -> [N, D].
        task: "classification" (the only kind it supports).
        n_way: classes per episode.
        batch_norm (str, "running"): "running" (standard BatchNorm) or "transductive".

    Shapes: an episode's support [S, C, H, W] with labels [S], query [Q, C, H, W]; logits [Q, n_way].

    References:
        Snell, Swersky & Zemel, "Prototypical Networks for Few-shot Learning", NeurIPS 2017.
    """

    tasks = ("classification",)

    def __init__(self, backbone: nn.Module, task: str, n_way: int, batch_norm: str = "running") -> None:
        super().__init__(backbone, task, n_way)
        set_batch_norm_mode(backbone, batch_norm)

    def logits(self, episode: Episode) -> Tensor:
        """Negative squared distances of the query embeddings to the class prototypes, [Q, n_way]."""
        n_support = len(episode.support_x)
        embeddings = self.backbone(torch.cat([episode.support_x, episode.query_x]))
        protos = prototypes(embeddings[:n_support], episode.support_y, self.n_way)
        return -(embeddings[n_support:, None] - protos[None]).pow(2).sum(-1)  # cdist's backward is NaN at 0

    def predict_batch(self, batch: EpisodeBatch) -> Tensor:
        return torch.stack([self.logits(episode) for episode in batch.episodes()])

    def meta_loss(self, batch: EpisodeBatch) -> StepOutput:
        logits = self.predict_batch(batch)
        losses = torch.stack([task_loss(lg, y, self.task) for lg, y in zip(logits, batch.query_y)])
        return StepOutput(losses.mean(), self.step_metrics(losses.detach(), logits, batch.query_y))
