"""MAML (Finn, Abbeel & Levine, ICML 2017) and first-order MAML.

The inner loop takes `inner_steps` SGD steps at `inner_lr` on each task's support set; the outer loss
is the query loss of the adapted parameters. Second-order MAML backpropagates through the inner
gradient steps (create_graph=True); first-order MAML (`first_order=true`) never builds that graph,
so its inner gradients are plain tensors and the meta-gradient is the query gradient at the adapted
parameters. Evaluation uses its own `eval_inner_steps` / `eval_inner_lr` (the paper: 1 step at 0.4 in
training and 3 steps at test on Omniglot 5-way; 5 steps at 0.01 and 10 at test on mini-ImageNet).
BatchNorm is transductive by default, as in the paper: each task's batch statistics, no running stats.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call

from metalearn.algorithms.base import MetaLearner, StepOutput, set_batch_norm_mode, task_loss
from metalearn.sampling.episode import Episode, EpisodeBatch

Params = dict[str, Tensor]


class MAML(MetaLearner):
    def __init__(
        self,
        backbone: nn.Module,
        task: str,
        n_way: int,
        inner_lr: float = 0.4,
        inner_steps: int = 1,
        eval_inner_lr: float | None = None,
        eval_inner_steps: int = 3,
        first_order: bool = False,
        batch_norm: str = "transductive",
    ) -> None:
        super().__init__(backbone, task, n_way)
        self.head = nn.Linear(backbone.out_features, self.out_dim)
        self.net = nn.Sequential(backbone, self.head)
        set_batch_norm_mode(self.net, batch_norm)
        self.inner_lr, self.inner_steps = inner_lr, inner_steps
        self.eval_inner_lr = inner_lr if eval_inner_lr is None else eval_inner_lr
        self.eval_inner_steps = eval_inner_steps
        self.first_order = first_order

    # --- functional pieces --------------------------------------------------------------------
    def fast_params(self) -> Params:
        """The parameters the inner loop adapts (all of them for MAML)."""
        return dict(self.net.named_parameters())

    def forward_with(self, params: Params, x: Tensor) -> Tensor:
        return functional_call(self.net, params, (x,))

    def adapt(self, params: Params, x: Tensor, y: Tensor, steps: int, lr: float, create_graph: bool) -> Params:
        """`steps` SGD steps on the support loss. With create_graph=False no second-order graph is built."""
        for _ in range(steps):
            loss = task_loss(self.forward_with(params, x), y, self.task)
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph)
            params = {name: p - lr * g for (name, p), g in zip(params.items(), grads)}
        return params

    # --- the MetaLearner interface --------------------------------------------------------------
    def meta_loss(self, batch: EpisodeBatch) -> StepOutput:
        outputs, losses = [], []
        for episode in batch.episodes():
            adapted = self.adapt(
                self.fast_params(), episode.support_x, episode.support_y,
                self.inner_steps, self.inner_lr, create_graph=not self.first_order,
            )
            out = self.forward_with(adapted, episode.query_x)
            outputs.append(out)
            losses.append(task_loss(out, episode.query_y, self.task))
        loss_vec = torch.stack(losses)
        return StepOutput(loss_vec.mean(), self.step_metrics(loss_vec.detach(), torch.stack(outputs), batch.query_y))

    def predict(self, episode: Episode) -> Tensor:
        with torch.enable_grad():  # the evaluator runs under no_grad; adaptation needs gradients
            start = {name: p.detach().requires_grad_() for name, p in self.fast_params().items()}
            adapted = self.adapt(
                start, episode.support_x, episode.support_y, self.eval_inner_steps, self.eval_inner_lr, create_graph=False
            )
        with torch.no_grad():
            return self.forward_with({n: p.detach() for n, p in adapted.items()}, episode.query_x)
