"""Matching Networks (Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra, NeurIPS 2016)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metalearn.algorithms.base import EpisodeClassifier
from metalearn.episode import EpisodeBatch

# the floor under a class probability before its log: attention can give a class exactly 0 in float32
_LOG_FLOOR = 1e-12


def attention(query: Tensor, support: Tensor, scale: Tensor | float = 1.0) -> Tensor:
    """The paper's attention kernel a(x, x_i): a softmax over the support of cosine similarities (times `scale`).

    query [..., Q, D], support [..., S, D] -> weights [..., Q, S], each row summing to 1."""
    cosines = F.normalize(query, dim=-1) @ F.normalize(support, dim=-1).transpose(-1, -2)
    return torch.softmax(scale * cosines, dim=-1)


def class_log_probs(weights: Tensor, support_y: Tensor, n_way: int) -> Tensor:
    """log P(y | x, S) = log sum_i a(x, x_i) [y_i = y]: weights [..., Q, S], labels [..., S] -> [..., Q, n_way].

    Used as logits: their softmax is the distribution itself, so cross-entropy on them is the paper's loss."""
    one_hot = F.one_hot(support_y, n_way).to(weights.dtype)
    return (weights @ one_hot).clamp_min(_LOG_FLOOR).log()


class FullContextEmbedding(nn.Module):
    """The paper's full-context embeddings (its appendix): the support embedded in the context of the whole support
    set, g(x_i, S) = g'(x_i) + h_fwd_i + h_bwd_i (a bidirectional LSTM over the support), and each query by K steps of
    an attention LSTM reading the support, h_k = LSTM(f'(x), [h_{k-1}, r_{k-1}], c_{k-1}) + f'(x), with the read-out
    r_{k-1} = sum_i softmax_i(h_{k-1} . g(x_i)) g(x_i). The paper does not fix K; `steps=None` takes one step per
    support example.

    Args:
        dim: the backbone's feature size D.
        steps (int | None): K, the attention LSTM's steps.

    Shapes: support [B, S, D], query [B, Q, D] -> the same shapes.
    """

    def __init__(self, dim: int, steps: int | None = None) -> None:
        super().__init__()
        self.steps = steps
        self.support_lstm = nn.LSTM(dim, dim, batch_first=True, bidirectional=True)
        self.query_cell = nn.LSTMCell(2 * dim, dim)  # input [f'(x), r_{k-1}]; its hidden state is h_{k-1}

    def forward(self, support: Tensor, query: Tensor) -> tuple[Tensor, Tensor]:
        b, q, d = query.shape
        both, _ = self.support_lstm(support)  # [B, S, 2D]: forward and backward hidden states
        g = support + both[..., :d] + both[..., d:]
        f = query.reshape(b * q, d)
        h, c = torch.zeros_like(f), torch.zeros_like(f)
        read = torch.zeros_like(f)
        memory = g.repeat_interleave(q, dim=0)  # [B * Q, S, D]: each query reads its own episode's support
        for _ in range(self.steps or support.shape[1]):
            h_hat, c = self.query_cell(torch.cat([f, read], dim=-1), (h, c))
            h = h_hat + f
            weights = torch.softmax((memory @ h[:, :, None]).squeeze(-1), dim=-1)  # [B * Q, S]
            read = (weights[:, None] @ memory).squeeze(1)
        return g, h.view(b, q, d)


class MatchingNet(EpisodeClassifier):
    """A query is labelled by attention over the support set: P(y | x, S) = sum_i a(x, x_i) y_i, with a(x, x_i) the
    softmax over the support of the cosine similarity of their embeddings; trained by the cross-entropy of that
    distribution on the query. With `fce=true` the embeddings see the whole support set (FullContextEmbedding).

    Args:
        backbone: the embedding, images [N, C, H, W] -> [N, D] (backbone.out_features = D).
        task: "classification" (the only kind it supports).
        n_way: classes per episode where the episode does not say (the ways are each episode's own).
        fce (bool, False): full-context embeddings.
        fce_steps (int | None): the attention LSTM's steps (None: one per support example).
        temperature (float | None, None): None is the paper's attention, a softmax of plain cosines; a number makes
            it a softmax of the cosines times a learned scale starting there. Cosines of non-negative (ReLU)
            features lie in [0, 1], so the plain softmax gives a 1-shot 5-way query at most e / (e + 4) = 0.40 on its
            class: its loss cannot fall below 0.91 and its gradients stay weak.
        batch_norm (str, "running"): "running" (standard BatchNorm) or "transductive".

    Shapes: a batch of B episodes with support [B, S, C, H, W], labels [B, S], query [B, Q, C, H, W]; logits
    (log-probabilities) [B, Q, n_way].

    References:
        Vinyals et al., "Matching Networks for One Shot Learning", NeurIPS 2016.
    """

    def __init__(
        self,
        backbone: nn.Module,
        task: str,
        n_way: int,
        fce: bool = False,
        fce_steps: int | None = None,
        temperature: float | None = None,
        batch_norm: str = "running",
    ) -> None:
        super().__init__(backbone, task, n_way, batch_norm)
        self.context = FullContextEmbedding(backbone.out_features, fce_steps) if fce else None
        self.temperature = nn.Parameter(torch.tensor(float(temperature))) if temperature is not None else None

    def predict_batch(self, batch: EpisodeBatch) -> Tensor:
        """log P(y | x, S) for each query and class, [B, Q, n_way]."""
        support, query = self.embed_episodes(batch)
        if self.context is not None:
            support, query = self.context(support, query)
        scale = self.temperature if self.temperature is not None else 1.0
        return class_log_probs(attention(query, support, scale), batch.support_y, self.ways(batch))
