"""Reptile (Nichol, Achiam & Schulman, "On First-Order Meta-Learning Algorithms", 2018)."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from metalearn.algorithms.base import StepOutput, task_loss
from metalearn.algorithms.gradient_based import GradientBasedLearner, Params
from metalearn.algorithms.inner_loop import adam_step, sgd_step
from metalearn.episode import EpisodeBatch
from metalearn.execution import call_module, inner_grads, map_tasks, ranks


class Reptile(GradientBasedLearner):
    """Reptile: move the initialisation towards the weights each task's own training reaches.

    Per task, `inner_steps` full-batch steps of SGD or Adam (the paper: Adam with beta1 = 0) from the
    meta-parameters theta give phi_i; the outer update is theta <- theta + epsilon * mean_i(phi_i - theta),
    with epsilon annealed linearly from `outer_lr` to `outer_lr_final` over training (the paper: 1 -> 0).
    This update replaces the trainer's optimiser step (`outer_update`). In meta-training the inner loop
    fits all the task's images (`inner_data: all`, like the paper's --train-shots larger than the test
    shots) or the support set only (`support`); the logged loss and accuracy are those of phi_i on the
    query set. Evaluation fine-tunes on the support set for `eval_inner_steps` (the paper: 50) and predicts
    the query set: `transductive`, the whole query set in one batch (BatchNorm uses the query batch's
    statistics); `non_transductive`, each query image normalised together with the support set alone (the
    paper's section 6), so no information passes between query images.

    Args:
        backbone: feature extractor, inputs [N, *input_shape] -> [N, out_features]; a linear head is added.
        task: "classification" or "regression".
        n_way: classes per episode (the head's output size; 1 for regression).
        inner_optimizer (str, "adam"): "adam" or "sgd".
        inner_lr (float, 0.001), inner_steps (int, 5): the inner loop in meta-training.
        adam_betas (two floats, (0.0, 0.999)): the inner Adam's betas.
        inner_data (str, "all"): "all" (support and query images) or "support".
        eval_inner_lr (float or None, None), eval_inner_steps (int, 50): fine-tuning at evaluation.
        outer_lr (float, 1.0), outer_lr_final (float, 0.0): epsilon at the first and the last iteration.
        evaluation (str, "transductive"): "transductive" or "non_transductive".
        batch_norm (str, "transductive"), batching (str, "auto"): as MAML.

    References:
        Nichol, Achiam & Schulman, "On First-Order Meta-Learning Algorithms", arXiv:1803.02999, 2018.
    """

    def __init__(
        self,
        backbone: nn.Module,
        task: str,
        n_way: int,
        inner_optimizer: str = "adam",
        inner_lr: float = 0.001,
        inner_steps: int = 5,
        adam_betas: Sequence[float] = (0.0, 0.999),
        inner_data: str = "all",
        eval_inner_lr: float | None = None,
        eval_inner_steps: int = 50,
        outer_lr: float = 1.0,
        outer_lr_final: float = 0.0,
        evaluation: str = "transductive",
        batch_norm: str = "transductive",
        batching: str = "auto",
    ) -> None:
        super().__init__(backbone, task, n_way, batch_norm, batching)
        self.inner_optimizer, self.inner_lr, self.inner_steps = inner_optimizer, inner_lr, inner_steps
        self.adam_betas = (float(adam_betas[0]), float(adam_betas[1]))
        self.inner_data = inner_data
        self.eval_inner_lr = inner_lr if eval_inner_lr is None else eval_inner_lr
        self.eval_inner_steps = eval_inner_steps
        self.outer_lr, self.outer_lr_final = outer_lr, outer_lr_final
        self.evaluation = evaluation
        self.epsilon = outer_lr
        self._mean_phi: Params | None = None

    def set_progress(self, iteration: int, total: int) -> None:
        """Linear annealing of epsilon: outer_lr at the first iteration towards outer_lr_final at the end."""
        done = (iteration - 1) / max(total, 1)
        self.epsilon = (1 - done) * self.outer_lr + done * self.outer_lr_final

    def forward_with(self, params: Params, x: Tensor) -> Tensor:
        return call_module(self.net, params, x)

    def adapt(self, x: Tensor, y: Tensor, steps: int, lr: float) -> Params:
        """`steps` full-batch SGD or Adam steps from theta on (x, y); never builds a second-order graph."""
        params = self.theta(detach=True)
        state: dict[str, tuple[Tensor, Tensor]] = {}
        loss_fn = lambda p: task_loss(self.forward_with(p, x), y, self.task)
        for step in range(steps):
            grads = inner_grads(loss_fn, params, second_order=False)
            if self.inner_optimizer == "adam":
                params, state = adam_step(params, grads, state, step + 1, lr, self.adam_betas)
            else:
                params = sgd_step(params, grads, {n: lr for n in params})
        return params

    def meta_loss(self, batch: EpisodeBatch) -> StepOutput:
        def one(sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor) -> tuple[Tensor, ...]:
            x, y = (torch.cat([sx, qx]), torch.cat([sy, qy])) if self.inner_data == "all" else (sx, sy)
            phi = self.adapt(x, y, self.inner_steps, self.inner_lr)
            out = self.forward_with(phi, qx)
            return (task_loss(out, qy, self.task), out, *phi.values())

        with torch.no_grad():  # inner gradients enable grad themselves; nothing here is differentiated
            losses, outputs, *phis = map_tasks(one, batch, self.path("train"), self)
        self._mean_phi = {n: phi.mean(0) for n, phi in zip(self.theta(), phis)}
        return StepOutput(losses.mean(), self.step_metrics(losses, outputs, batch.query_y))

    def outer_update(self, out: StepOutput, optimizer: torch.optim.Optimizer, grad_clip: float | None) -> None:
        """theta <- theta + epsilon * (mean_i phi_i - theta), from the phi_i of the last meta_loss."""
        if self._mean_phi is None:
            raise RuntimeError("Reptile.outer_update needs a meta_loss call first")
        # the mean over the meta-batch's tasks, where they are split over processes
        mean_phi = dict(zip(self._mean_phi, ranks.task_mean(list(self._mean_phi.values()))))
        with torch.no_grad():
            for n, p in self.net.named_parameters():
                p.add_(mean_phi[n] - p, alpha=self.epsilon)
        self._mean_phi = None

    def task_predictor(self) -> Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]:
        def predict(sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor) -> Tensor:
            phi = self.adapt(sx, sy, self.eval_inner_steps, self.eval_inner_lr)
            if self.evaluation == "transductive":
                return self.forward_with(phi, qx)
            alone = lambda q: self.forward_with(phi, torch.cat([sx, q[None]]))[-1]
            return torch.func.vmap(alone)(qx)

        return predict
