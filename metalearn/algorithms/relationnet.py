"""Relation Networks (Sung, Yang, Zhang, Xiang, Torr & Hospedales, CVPR 2018)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metalearn.algorithms.base import EpisodeClassifier, StepOutput, set_batch_norm_mode
from metalearn.algorithms.classes import class_sums
from metalearn.episode import EpisodeBatch
from metalearn.errors import ConfigError
from metalearn.models.pooling import pool_then_activate


class RelationModule(nn.Module):
    """g_phi: two blocks of 3x3 convolution (64 filters), BatchNorm, ReLU and 2x2 max-pooling over the concatenated
    (query, class) feature maps, then fully connected layers of `hidden` units (ReLU) and 1 unit (sigmoid). A block
    pools only while the maps are at least 2x2, so the module fits any backbone's maps (the paper's are 64x5x5 on
    mini-ImageNet and 64x7x7 on Omniglot, with padding in the Omniglot convolutions).

    Args:
        feature_shape: (C, H, W) of the backbone's feature maps.
        channels (int, 64), hidden (int, 8): as in the paper.

    Shapes: pairs [N, 2C, H, W] -> relation scores [N] in (0, 1).
    """

    def __init__(self, feature_shape: tuple[int, int, int], channels: int = 64, hidden: int = 8) -> None:
        super().__init__()
        c, h, w = feature_shape
        blocks: list[nn.Module] = []
        for i in range(2):
            blocks += [nn.Conv2d(2 * c if i == 0 else channels, channels, 3, padding=1), nn.BatchNorm2d(channels)]
            pool = nn.MaxPool2d(2) if min(h, w) >= 2 else None
            blocks += pool_then_activate(nn.ReLU(inplace=True), pool)
            if pool is not None:
                h, w = h // 2, w // 2
        self.convs = nn.Sequential(*blocks, nn.Flatten())
        self.head = nn.Sequential(nn.Linear(channels * h * w, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1))

    def forward(self, pairs: Tensor) -> Tensor:
        return torch.sigmoid(self.head(self.convs(pairs))).squeeze(-1)


class RelationNet(EpisodeClassifier):
    """A learned comparison: each query's feature map is concatenated with each class's (the sum of its support
    maps) and a relation module scores the pair in (0, 1); trained by the mean squared error of the scores against
    the one-hot labels, as in the paper. The backbone keeps its spatial maps (backbone.feature_shape).

    Args:
        backbone: the embedding module f_phi with `feature_shape` (C, H, W): images [N, C, H, W] -> [N, C*H*W].
        task: "classification" (the only kind it supports).
        n_way: classes per episode where the episode does not say (the ways are each episode's own).
        relation_channels (int, 64), relation_hidden (int, 8): the relation module's sizes.
        batch_norm (str, "running"): "running" (standard BatchNorm) or "transductive".

    Shapes: support [B, S, C, H, W], labels [B, S], query [B, Q, C, H, W]; relation scores [B, Q, n_way].

    References:
        Sung et al., "Learning to Compare: Relation Network for Few-Shot Learning", CVPR 2018.
    """

    def __init__(
        self,
        backbone: nn.Module,
        task: str,
        n_way: int,
        relation_channels: int = 64,
        relation_hidden: int = 8,
        batch_norm: str = "running",
    ) -> None:
        super().__init__(backbone, task, n_way, batch_norm)
        shape = tuple(getattr(backbone, "feature_shape", ()) or ())
        if len(shape) != 3:
            raise ConfigError(
                "algorithm=relationnet compares feature maps, but this model gives flat features; use an image "
                "backbone such as model=conv4 or model=resnet12"
            )
        self.feature_shape = shape
        self.relation = RelationModule(shape, relation_channels, relation_hidden)  # type: ignore[arg-type]
        set_batch_norm_mode(self.relation, batch_norm)

    def predict_batch(self, batch: EpisodeBatch) -> Tensor:
        """Relation scores of each query with each class, [B, Q, n_way] in (0, 1)."""
        n_way = self.ways(batch)
        support, query = (f.unflatten(-1, self.feature_shape) for f in self.embed_episodes(batch))
        classes = class_sums(support, batch.support_y, n_way)  # [B, n, C, H, W]
        b, q = query.shape[:2]
        pairs = torch.cat(
            [query[:, :, None].expand(-1, -1, n_way, -1, -1, -1), classes[:, None].expand(-1, q, -1, -1, -1, -1)],
            dim=3,
        )  # [B, Q, n, 2C, H, W]
        return self.relation(pairs.flatten(0, 2)).view(b, q, n_way)

    def meta_loss(self, batch: EpisodeBatch) -> StepOutput:
        scores = self.predict_batch(batch)
        targets = F.one_hot(batch.query_y, scores.shape[-1]).to(scores.dtype)
        losses = (scores - targets).pow(2).mean(dim=(-2, -1))  # per episode
        return StepOutput(losses.mean(), self.step_metrics(losses.detach(), scores, batch.query_y))
