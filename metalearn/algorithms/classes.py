"""Pooling of support features per class, shared by the metric learners (prototypes, relation class maps)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def class_sums(features: Tensor, labels: Tensor, n_way: int) -> Tensor:
    """The sum of each class's support features: features [..., S, *F], labels [..., S] -> [..., n_way, *F]."""
    lead = labels.shape[:-1]
    one_hot = F.one_hot(labels, n_way).to(features.dtype)  # [..., S, n]
    flat = features.reshape(*lead, labels.shape[-1], -1)  # [..., S, prod(F)]
    return (one_hot.transpose(-1, -2) @ flat).view(*lead, n_way, *features.shape[len(lead) + 1 :])


def class_means(features: Tensor, labels: Tensor, n_way: int) -> Tensor:
    """The mean of each class's support features (a class without support examples gets zeros): [..., n_way, *F]."""
    counts = F.one_hot(labels, n_way).sum(-2).clamp_min(1).to(features.dtype)  # [..., n]
    sums = class_sums(features, labels, n_way)
    return sums / counts.view(*counts.shape, *(1,) * (sums.dim() - counts.dim()))
