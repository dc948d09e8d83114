"""ANIL, Almost No Inner Loop (Raghu, Raghu, Bengio & Vinyals, ICLR 2020)."""

from __future__ import annotations

from torch import Tensor

from metalearn.algorithms.gradient_based import Params
from metalearn.algorithms.maml import MAML
from metalearn.execution import call_module

_BODY, _HEAD = "0.", "1."  # prefixes in MAML.net = Sequential(backbone, head)


class ANIL(MAML):
    """MAML in which only the head (the final linear layer) adapts in the inner loop.

    The body is meta-trained in the outer loop only. Its features of the support and query sets are
    computed once per task, so an inner step costs a linear layer instead of a full network pass. The
    MAML options (first_order, batching, eval steps, checkpoint_inner) apply to the head.

    Args:
        as MAML; the adapted parameters are the head's weight [n_way, out_features] and bias [n_way].

    References:
        Raghu, Raghu, Bengio & Vinyals, "Rapid Learning or Feature Reuse? Towards Understanding the
        Effectiveness of MAML", ICLR 2020.
    """

    def fast_names(self) -> list[str]:
        return [n for n, _ in self.net.named_parameters() if n.startswith(_HEAD)]

    def embed(self, theta: Params, x: Tensor) -> Tensor:
        body = {n[len(_BODY) :]: p for n, p in theta.items() if n.startswith(_BODY)}
        return call_module(self.backbone, body, x)

    def forward_with(self, theta: Params, fast: Params, x: Tensor, step: int) -> Tensor:
        return call_module(self.head, {n[len(_HEAD) :]: p for n, p in fast.items()}, x)
