"""Meta-SGD (Li, Zhou, Chen & Li, 2017): MAML with a learned inner learning rate for every parameter entry.

Each adapted parameter has a learning-rate tensor of its own shape, meta-learned together with the
initialisation; the inner step is theta - alpha * grad (elementwise). The rates start at `inner_lr`
(the paper draws them from a small uniform range); evaluation uses the learned rates, so eval_inner_lr
is unused. One inner step by default, as in the paper.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from metalearn.algorithms.maml import MAML, _key


class MetaSGD(MAML):
    def __init__(self, backbone: nn.Module, task: str, n_way: int, inner_lr: float = 0.4, **kwargs: object) -> None:
        super().__init__(backbone, task, n_way, inner_lr=inner_lr, **kwargs)  # type: ignore[arg-type]
        params = dict(self.net.named_parameters())
        self.alphas = nn.ParameterDict(
            {_key(n): nn.Parameter(torch.full_like(params[n], float(inner_lr))) for n in self.fast_names()}
        )

    def lrs(self, step: int, training: bool) -> dict[str, float | Tensor]:
        return {n: self.alphas[_key(n)] for n in self.fast_names()}
