"""Meta-SGD (Li, Zhou, Chen & Li, 2017)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from metalearn.algorithms.gradient_based import attribute_name
from metalearn.algorithms.maml import MAML


class MetaSGD(MAML):
    """MAML with a learned inner learning rate for every parameter entry.

    Each adapted parameter has a learning-rate tensor of its own shape, meta-learned together with the
    initialisation; the inner step is theta - alpha * grad (elementwise). The rates start at `inner_lr`
    (the paper draws them from a small uniform range); evaluation uses the learned rates, so eval_inner_lr
    is unused. One inner step by default, as in the paper.

    Args:
        as MAML, with eval_inner_steps (int, 1): the learned rates are fitted to inner_steps steps.
        The rates `alphas` have the shapes of the adapted parameters.

    References:
        Li, Zhou, Chen & Li, "Meta-SGD: Learning to Learn Quickly for Few-Shot Learning", arXiv:1707.09835, 2017.
    """

    def __init__(
        self,
        backbone: nn.Module,
        task: str,
        n_way: int,
        inner_lr: float = 0.4,
        inner_steps: int = 1,
        eval_inner_lr: float | None = None,
        eval_inner_steps: int = 1,
        first_order: bool = False,
        batch_norm: str = "transductive",
        batching: str = "auto",
        checkpoint_inner: bool = False,
    ) -> None:
        super().__init__(
            backbone, task, n_way, inner_lr, inner_steps, eval_inner_lr, eval_inner_steps, first_order, batch_norm,
            batching, checkpoint_inner,
        )  # fmt: skip
        params = dict(self.net.named_parameters())
        self.alphas = nn.ParameterDict(
            {attribute_name(n): nn.Parameter(torch.full_like(params[n], float(inner_lr))) for n in self.fast_names()}
        )

    def lrs(self, step: int, training: bool) -> dict[str, float | Tensor]:
        return {n: self.alphas[attribute_name(n)] for n in self.fast_names()}
