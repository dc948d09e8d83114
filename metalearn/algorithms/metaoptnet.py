"""MetaOptNet: meta-learning with a differentiable multi-class SVM head (Lee, Maji, Ravichandran & Soatto,
CVPR 2019)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metalearn.algorithms.base import EpisodeClassifier
from metalearn.algorithms.svm_dual import svm_dual
from metalearn.episode import EpisodeBatch


class MetaOptNet(EpisodeClassifier):
    """Each episode trains a linear multi-class SVM (Crammer-Singer) on the support features by solving its dual QP
    to convergence; the query logits are the SVM's class scores times a learned scale. The backbone is trained
    through the QP's solution by implicit differentiation (metalearn.algorithms.svm_dual).

    Args:
        backbone: the embedding, images [N, C, H, W] -> [N, D] (the paper: ResNet-12).
        task: "classification" (the only kind it supports).
        n_way: classes per episode where the episode does not say (the ways are each episode's own).
        c (float, 0.1): the SVM's regularisation constant C (the paper's 0.1).
        ridge (float, 1.0): a ridge on the dual, ridge/2 ||tau||^2, which makes the QP strictly convex so that its
            solution and derivative are unique; small against the kernel's entries for the usual feature sizes.
        scale (float, 1.0): the logits' initial scale (learned).
        max_iter (int, 1000), tol (float, 1e-6): the QP solver's limit and relative tolerance.
        batch_norm (str, "running"): "running" (standard BatchNorm) or "transductive".

    Shapes: support [B, S, C, H, W], labels [B, S], query [B, Q, C, H, W]; logits [B, Q, n_way].

    References:
        Lee, Maji, Ravichandran & Soatto, "Meta-Learning with Differentiable Convex Optimization", CVPR 2019.
        Crammer & Singer, "On the Algorithmic Implementation of Multiclass Kernel-based Vector Machines", JMLR 2001.
    """

    def __init__(
        self,
        backbone: nn.Module,
        task: str,
        n_way: int,
        c: float = 0.1,
        ridge: float = 1.0,
        scale: float = 1.0,
        max_iter: int = 1000,
        tol: float = 1e-6,
        batch_norm: str = "running",
    ) -> None:
        super().__init__(backbone, task, n_way, batch_norm)
        self.c, self.ridge, self.max_iter, self.tol = c, ridge, max_iter, tol
        self.scale = nn.Parameter(torch.tensor(float(scale)))

    def predict_batch(self, batch: EpisodeBatch) -> Tensor:
        """scale * K(query, support) tau, with tau the SVM dual solution on the support set: [B, Q, n_way]."""
        support, query = (f.flatten(2) for f in self.embed_episodes(batch))
        one_hot = F.one_hot(batch.support_y, self.ways(batch)).to(support.dtype)
        tau = svm_dual(support @ support.transpose(1, 2), one_hot, self.c, self.ridge, self.max_iter, self.tol)
        return self.scale * (query @ support.transpose(1, 2)) @ tau
