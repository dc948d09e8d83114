"""MAML++ (Antoniou, Edwards & Storkey, "How to train your MAML", ICLR 2019)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from metalearn.algorithms.gradient_based import Params, attribute_name
from metalearn.algorithms.maml import MAML
from metalearn.execution import call_module


class MAMLPlusPlus(MAML):
    """MAML with the training fixes of MAML++, each of which can be switched off.

    multi_step_loss (MSL): the outer loss sums the query loss after every inner step with weights that start
      uniform and anneal over `multi_step_loss_iterations` until only the final step counts (non-final
      weights floor at 0.03 / inner_steps, as in the reference code).
    per_layer_inner_lr (LSLR): one learnable inner learning rate per parameter tensor and inner step.
      Evaluation uses the learned rates (steps past inner_steps reuse the last one); eval_inner_lr is unused.
    per_step_batch_norm (BNWB + BNRS): BatchNorm weight and bias per inner step, meta-learned in the outer
      loop and not adapted in the inner loop; with batch_norm=running also running statistics per inner
      step: every forward pass of inner step s (support and query) updates step s's running mean and
      variance, and evaluation normalises step s's activations with them. With transductive BatchNorm (the
      default, and the reference code's training=True everywhere) every pass normalises with its own batch
      statistics, so no running statistics exist to keep.
    first_order_iterations (DA, derivative-order annealing): first order for iterations 1..N, second order after.
    Cosine annealing of the outer learning rate is the trainer's: trainer.scheduler=cosine.

    Args:
        backbone, task, n_way, eval_inner_lr, first_order, batch_norm, batching, checkpoint_inner: as MAML.
        inner_lr (float, 0.1): the inner learning rate (the initial value of the learned rates with LSLR).
        inner_steps (int, 5): inner steps in meta-training.
        eval_inner_steps (int, 5): inner steps at evaluation.
        multi_step_loss (bool, True), multi_step_loss_iterations (int, 500): MSL and its annealing length.
        per_layer_inner_lr (bool, True): LSLR, parameters [inner_steps] per adapted tensor.
        per_step_batch_norm (bool, True): BNWB (+ BNRS), parameters [inner_steps, C] per BatchNorm tensor.
        first_order_iterations (int, 2500): DA.

    References:
        Antoniou, Edwards & Storkey, "How to train your MAML", ICLR 2019.
    """

    def __init__(
        self,
        backbone: nn.Module,
        task: str,
        n_way: int,
        inner_lr: float = 0.1,
        inner_steps: int = 5,
        eval_inner_lr: float | None = None,
        eval_inner_steps: int = 5,
        first_order: bool = False,
        batch_norm: str = "transductive",
        batching: str = "auto",
        checkpoint_inner: bool = False,
        multi_step_loss: bool = True,
        multi_step_loss_iterations: int = 500,
        per_layer_inner_lr: bool = True,
        per_step_batch_norm: bool = True,
        first_order_iterations: int = 2500,
    ) -> None:
        super().__init__(
            backbone, task, n_way, inner_lr, inner_steps, eval_inner_lr, eval_inner_steps, first_order, batch_norm,
            batching, checkpoint_inner,
        )  # fmt: skip
        self.multi_step_loss, self.multi_step_loss_iterations = multi_step_loss, multi_step_loss_iterations
        self.first_order_iterations = first_order_iterations
        self.bn_steps = nn.ParameterDict()
        if per_step_batch_norm:
            for name, p in self.net.named_parameters():
                if self._is_batch_norm(name):
                    per_step = p.detach().clone().expand(inner_steps, *p.shape).clone()
                    self.bn_steps[attribute_name(name)] = nn.Parameter(per_step)
        self.bn_stats = nn.Module()  # per-step running statistics (BNRS), [inner_steps, C] per BatchNorm buffer
        self.stat_names: list[str] = []
        if per_step_batch_norm and batch_norm == "running":
            for name, buffer in self.net.named_buffers():
                if name.endswith((".running_mean", ".running_var")):
                    self.stat_names.append(name)
                    per_step = buffer.detach().clone().expand(inner_steps, *buffer.shape).clone()
                    self.bn_stats.register_buffer(attribute_name(name), per_step)
        self.step_lrs = nn.ParameterDict()
        if per_layer_inner_lr:
            for name in self.fast_names():
                self.step_lrs[attribute_name(name)] = nn.Parameter(torch.full((inner_steps,), float(inner_lr)))

    def _is_batch_norm(self, name: str) -> bool:
        module = self.net.get_submodule(name.rsplit(".", 1)[0])
        return isinstance(module, nn.modules.batchnorm._BatchNorm)

    @property
    def second_order(self) -> bool:
        """Second order unless first_order, or still within the first `first_order_iterations` iterations."""
        return not self.first_order and (
            self.first_order_iterations == 0 or self.iteration > self.first_order_iterations
        )

    def step_weights(self) -> list[float] | None:
        if not self.multi_step_loss or self.inner_steps == 1:
            return None
        n = self.inner_steps
        done = min(self.iteration / max(self.multi_step_loss_iterations, 1), 1.0)
        non_final = max((1.0 - done) / n, 0.03 / n)
        return [non_final] * (n - 1) + [1.0 - (n - 1) * non_final]

    def fast_names(self) -> list[str]:
        """All parameters but the per-step BatchNorm ones, which only the outer loop learns."""
        return [n for n, _ in self.net.named_parameters() if not (len(self.bn_steps) and self._is_batch_norm(n))]

    def forward_with(self, theta: Params, fast: Params, x: Tensor, step: int) -> Tensor:
        params = {**theta, **fast}
        if len(self.bn_steps):
            index = min(max(step, 0), self.inner_steps - 1)
            params.update(
                {n: self.bn_steps[attribute_name(n)][index] for n in theta if attribute_name(n) in self.bn_steps}
            )
            # views into step `index`'s statistics: BatchNorm's in-place running update lands in them
            params.update({n: self.bn_stats.get_buffer(attribute_name(n))[index] for n in self.stat_names})
        return call_module(self.net, params, x)

    def lrs(self, step: int, training: bool) -> dict[str, float | Tensor]:
        if len(self.step_lrs):
            index = min(step, self.inner_steps - 1)
            return {n: self.step_lrs[attribute_name(n)][index] for n in self.fast_names()}
        return super().lrs(step, training)
