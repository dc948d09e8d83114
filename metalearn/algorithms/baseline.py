"""Baseline and Baseline++ (Chen, Liu, Kira, Wang & Huang, "A Closer Look at Few-shot Classification", ICLR 2019)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metalearn.algorithms.base import MetaLearner, StepOutput, set_batch_norm_mode
from metalearn.episode import EpisodeBatch, LabelledBatch
from metalearn.errors import ConfigError

# the fine-tuning optimiser of the paper's evaluation: SGD with these settings on the new head only
FINETUNE_SGD = {"momentum": 0.9, "dampening": 0.9, "weight_decay": 0.001}


def cosine_scale(num_classes: int) -> float:
    """Chen et al.'s scale of the cosine logits: 2 for heads of up to 200 classes, 10 for more."""
    return 2.0 if num_classes <= 200 else 10.0


def head_logits(features: Tensor, weight: Tensor, bias: Tensor | None, scale: float | None) -> Tensor:
    """A linear head, features [..., N, D] @ weight [..., n, D]^T + bias [..., n], or (scale given) a cosine head,
    scale * cos(feature, weight row): [..., N, n]."""
    if scale is not None:
        return scale * F.normalize(features, dim=-1) @ F.normalize(weight, dim=-1).transpose(-1, -2)
    return features @ weight.transpose(-1, -2) + bias[..., None, :]  # type: ignore[index]


class Baseline(MetaLearner):
    """Pre-training: plain classification of all the training classes' images in mini-batches (sampler=batches),
    through a linear head (`head="linear"`, Baseline) or a cosine head (`head="cosine"`, Baseline++), learned with
    the backbone. Testing: the pre-training head is dropped and, on each episode, a new head of the same kind is fitted
    to the support features with the backbone frozen, for `finetune_epochs` passes over the support set in
    mini-batches of `finetune_batch_size`, by SGD at `finetune_lr` (momentum 0.9, dampening 0.9, weight decay 1e-3:
    the paper's protocol); the query logits are the new head's. The fitting is seeded, so evaluation is
    deterministic, and all episodes of a batch are fitted at once (their heads and updates are independent).

    Args:
        backbone: the embedding, images [N, C, H, W] -> [N, D].
        task: "classification" (the only kind it supports).
        n_way: classes per episode where the episode does not say (the ways are each episode's own).
        train_classes (int | None, None): the classes of the pre-training head (a run passes the training split's
            when the config leaves it null; required).
        head (str, "linear"): "linear" (Baseline) or "cosine" (Baseline++).
        scale (float | None, None): the cosine head's scale (None: Chen et al.'s rule, 2 up to 200 classes, else 10).
        finetune_epochs (int, 100), finetune_batch_size (int, 4), finetune_lr (float, 0.01): the test-time fitting.
        batch_norm (str, "running"): "running" (standard BatchNorm) or "transductive".

    Shapes: training LabelledBatch x [N, C, H, W], y [N] -> logits [N, train_classes]; test episodes support
    [B, S, C, H, W], labels [B, S], query [B, Q, C, H, W] -> logits [B, Q, n_way].

    References:
        Chen, Liu, Kira, Wang & Huang, "A Closer Look at Few-shot Classification", ICLR 2019.
    """

    tasks = ("classification",)
    any_ways = True

    def __init__(
        self,
        backbone: nn.Module,
        task: str,
        n_way: int,
        train_classes: int | None = None,
        head: str = "linear",
        scale: float | None = None,
        finetune_epochs: int = 100,
        finetune_batch_size: int = 4,
        finetune_lr: float = 0.01,
        batch_norm: str = "running",
    ) -> None:
        super().__init__(backbone, task, n_way)
        if train_classes is None:
            raise ConfigError("Baseline needs train_classes, the number of classes its pre-training head tells apart")
        set_batch_norm_mode(backbone, batch_norm)
        self.cosine = head == "cosine"
        self.scale = scale
        self.finetune_epochs = finetune_epochs
        self.finetune_batch_size = finetune_batch_size
        self.finetune_lr = finetune_lr
        self.classifier = nn.Linear(backbone.out_features, train_classes, bias=not self.cosine)

    def _scale(self, num_classes: int) -> float | None:
        if not self.cosine:
            return None
        return self.scale if self.scale is not None else cosine_scale(num_classes)

    def meta_loss(self, batch: LabelledBatch) -> StepOutput:  # type: ignore[override]
        """Cross-entropy of the pre-training head on a mini-batch of training images."""
        w = self.classifier
        logits = head_logits(self.backbone(batch.x), w.weight, w.bias, self._scale(w.out_features))
        loss = F.cross_entropy(logits, batch.y)
        return StepOutput(loss, self.step_metrics(loss.detach()[None], logits[None], batch.y[None]))

    def predict_batch(self, batch: EpisodeBatch) -> Tensor:
        """Fit a new head per episode on its support features, then score its queries: [B, Q, n_way]."""
        support, query = (f.flatten(2).detach() for f in self.embed_episodes(batch))
        n_way = self.ways(batch)
        b, s, d = support.shape
        gen = torch.Generator().manual_seed(0)  # the same fitting for every run and checkpoint
        bound = 1 / math.sqrt(d)  # nn.Linear's initialisation
        weight = ((torch.rand(b, n_way, d, generator=gen) * 2 - 1) * bound).to(support)
        bias = None if self.cosine else ((torch.rand(b, n_way, generator=gen) * 2 - 1) * bound).to(support)
        params = [p.requires_grad_() for p in (weight, bias) if p is not None]
        optimizer = torch.optim.SGD(params, lr=self.finetune_lr, **FINETUNE_SGD)
        scale = self._scale(n_way)
        with torch.enable_grad():
            for _ in range(self.finetune_epochs):
                order = torch.rand(b, s, generator=gen).argsort(dim=1).to(support.device)
                for start in range(0, s, self.finetune_batch_size):
                    picked = order[:, start : start + self.finetune_batch_size]  # [B, b]
                    x = support.gather(1, picked[..., None].expand(-1, -1, d))
                    y = batch.support_y.gather(1, picked)
                    logits = head_logits(x, weight, bias, scale)
                    # the sum of each episode's mean loss: every episode's head gets its own gradient
                    loss = F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(1).sum()
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
        return head_logits(query, weight.detach(), None if bias is None else bias.detach(), scale)
