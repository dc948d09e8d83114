"""ANIL, Almost No Inner Loop (Raghu, Raghu, Bengio & Vinyals, ICLR 2020).

MAML in which only the head (the final linear layer) adapts in the inner loop; the body is
meta-trained in the outer loop only. The body's features of the support and query sets are computed
once per task, so an inner step costs a linear layer instead of a full network pass. All MAML options
(first_order, batching, eval steps, multi-step loss, per-layer inner lrs) apply to the head.
"""

from __future__ import annotations

from torch import Tensor

from metalearn.algorithms.functional import Params
from metalearn.algorithms.maml import MAML
from metalearn.algorithms.task_threads import call_module

_BODY, _HEAD = "0.", "1."  # prefixes in MAML.net = Sequential(backbone, head)


class ANIL(MAML):
    def fast_names(self) -> list[str]:
        return [n for n, _ in self.net.named_parameters() if n.startswith(_HEAD)]

    def embed(self, theta: Params, x: Tensor) -> Tensor:
        body = {n[len(_BODY) :]: p for n, p in theta.items() if n.startswith(_BODY)}
        return call_module(self.backbone, body, x)

    def forward_with(self, theta: Params, fast: Params, x: Tensor, step: int) -> Tensor:
        return call_module(self.head, {n[len(_HEAD) :]: p for n, p in fast.items()}, x)
