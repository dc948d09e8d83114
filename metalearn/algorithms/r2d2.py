"""R2D2: meta-learning with a differentiable closed-form ridge-regression head (Bertinetto, Henriques, Torr &
Vedaldi, ICLR 2019)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metalearn.algorithms.base import EpisodeClassifier
from metalearn.episode import EpisodeBatch


def ridge_weights(support: Tensor, targets: Tensor, lam: Tensor | float) -> Tensor:
    """The ridge-regression solution W = argmin ||X W - Y||^2 + lam ||W||^2 = (X^T X + lam I)^-1 X^T Y, computed in
    the Woodbury form X^T (X X^T + lam I)^-1 Y when there are fewer support examples than features (an S x S system
    instead of D x D, the paper's point: few-shot episodes have S << D).

    support X [..., S, D], targets Y [..., S, n] -> W [..., D, n]."""
    s, d = support.shape[-2:]
    xt = support.transpose(-1, -2)
    if s < d:
        gram = support @ xt + lam * torch.eye(s, dtype=support.dtype, device=support.device)
        return xt @ torch.linalg.solve(gram, targets)
    gram = xt @ support + lam * torch.eye(d, dtype=support.dtype, device=support.device)
    return torch.linalg.solve(gram, xt @ targets)


class R2D2(EpisodeClassifier):
    """Each episode fits a ridge regression from the support features (with a constant 1 appended, the bias) to the
    one-hot labels in closed form; the query logits are its predictions, scaled and shifted by learned scalars
    (alpha X_q W + beta), since regression outputs are not calibrated logits. The regulariser lam is learned too
    (kept positive as exp of a parameter). Gradients flow through the solve into the backbone.

    Args:
        backbone: the embedding, images [N, C, H, W] -> [N, D].
        task: "classification" (the only kind it supports).
        n_way: classes per episode where the episode does not say (the ways are each episode's own).
        lam (float, 1.0): the ridge regulariser's initial value (learned).
        scale (float, 1.0), bias (float, 0.0): the initial alpha and beta (learned).
        batch_norm (str, "running"): "running" (standard BatchNorm) or "transductive".

    Shapes: support [B, S, C, H, W], labels [B, S], query [B, Q, C, H, W]; logits [B, Q, n_way].

    References:
        Bertinetto, Henriques, Torr & Vedaldi, "Meta-learning with differentiable closed-form solvers", ICLR 2019.
    """

    def __init__(
        self,
        backbone: nn.Module,
        task: str,
        n_way: int,
        lam: float = 1.0,
        scale: float = 1.0,
        bias: float = 0.0,
        batch_norm: str = "running",
    ) -> None:
        super().__init__(backbone, task, n_way, batch_norm)
        self.log_lam = nn.Parameter(torch.tensor(math.log(lam)))
        self.scale = nn.Parameter(torch.tensor(float(scale)))
        self.bias = nn.Parameter(torch.tensor(float(bias)))

    def predict_batch(self, batch: EpisodeBatch) -> Tensor:
        """alpha * [X_q, 1] W + beta, with W the ridge solution on [X_s, 1] and the one-hot labels: [B, Q, n_way]."""
        support, query = (F.pad(f.flatten(2), (0, 1), value=1.0) for f in self.embed_episodes(batch))
        targets = F.one_hot(batch.support_y, self.ways(batch)).to(support.dtype)
        weights = ridge_weights(support, targets, self.log_lam.exp())
        return self.scale * (query @ weights) + self.bias
