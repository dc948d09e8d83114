"""MAML (Finn, Abbeel & Levine, ICML 2017) and first-order MAML."""

from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from metalearn.algorithms.base import StepOutput, task_loss
from metalearn.algorithms.gradient_based import GradientBasedLearner, Params
from metalearn.algorithms.inner_loop import checkpointed, sgd_step
from metalearn.episode import EpisodeBatch
from metalearn.execution import call_module, choose_path, inner_grads, map_task_gradients


class MAML(GradientBasedLearner):
    """Model-Agnostic Meta-Learning, second order or first order.

    The inner loop takes `inner_steps` SGD steps at `inner_lr` on each task's support set; the outer loss
    is the query loss of the adapted parameters, averaged over the meta-batch. Second-order MAML
    backpropagates through the inner gradient steps; first-order MAML takes every inner gradient at
    detached parameters, so no second-order graph exists and the meta-gradient is the query gradient at
    the adapted parameters. Evaluation uses its own `eval_inner_steps` / `eval_inner_lr` (the paper: 1
    step at 0.4 in training and 3 at test on Omniglot 5-way). BatchNorm is transductive by default, as in
    the paper: each task's batch statistics, no running statistics.

    Args:
        backbone: feature extractor, inputs [N, *input_shape] -> [N, out_features]; a linear head is added.
        task: "classification" or "regression".
        n_way: classes per episode (the head's output size; 1 for regression).
        inner_lr (float, 0.4): inner-loop learning rate.
        inner_steps (int, 1): inner steps in meta-training.
        eval_inner_lr (float or None, None): inner learning rate at evaluation; None is inner_lr.
        eval_inner_steps (int, 3): inner steps at evaluation.
        first_order (bool, False): first-order MAML.
        batch_norm (str, "transductive"): "transductive" or "running" BatchNorm statistics.
        batching (str, "auto"): execution path, "vmap", "loop", "threads" or "auto" (metalearn.execution).
        checkpoint_inner (bool, False): recompute each second-order inner step in the backward pass (less
            memory for many inner steps; loop and threads paths).

    Shapes: a meta-batch holds B tasks of support [S, C, H, W] / [S] and query [Q, C, H, W] / [Q];
    predict_batch returns [B, Q, n_way].

    References:
        Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks", ICML 2017.

    Example:
        >>> learner = MAML(Conv4((1, 28, 28)), "classification", n_way=5, inner_lr=0.4, first_order=True)
        >>> out = learner.meta_loss(sampler.train_batch()); learner.outer_update(out, optimizer, None)
    """

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
        batching: str = "auto",
        checkpoint_inner: bool = False,
    ) -> None:
        super().__init__(backbone, task, n_way, batch_norm, batching)
        self.checkpoint_inner = checkpoint_inner
        self.inner_lr, self.inner_steps = inner_lr, inner_steps
        self.eval_inner_lr = inner_lr if eval_inner_lr is None else eval_inner_lr
        self.eval_inner_steps = eval_inner_steps
        self.first_order = first_order
        self.iteration = 0

    def set_progress(self, iteration: int, total: int) -> None:
        self.iteration = iteration

    def path(self, purpose: str) -> str:
        """As the family's, but `auto` trains on the loop when checkpoint_inner asks for recomputation."""
        return choose_path(self.batching, self.batch_norm, self, recompute=self.checkpoint_inner and purpose == "train")

    # --- the pieces MAML++, ANIL and Meta-SGD change ---------------------------------------------------
    @property
    def second_order(self) -> bool:
        return not self.first_order

    def step_weights(self) -> list[float] | None:
        """Weights of the query loss after each inner step (None: only the final step's loss counts)."""
        return None

    def fast_names(self) -> list[str]:
        """Names of the parameters the inner loop adapts."""
        return [n for n, _ in self.net.named_parameters()]

    def embed(self, theta: Params, x: Tensor) -> Tensor:
        """Inputs of the adapted part; ANIL computes the body's features here, once per task."""
        return x

    def forward_with(self, theta: Params, fast: Params, x: Tensor, step: int) -> Tensor:
        """Outputs with the adapted parameters `fast` at inner step `step`."""
        return call_module(self.net, {**theta, **fast}, x)

    def lrs(self, step: int, training: bool) -> dict[str, float | Tensor]:
        """Inner learning rate per fast parameter at inner step `step`."""
        lr = self.inner_lr if training else self.eval_inner_lr
        return {n: lr for n in self.fast_names()}

    # --- one task ---------------------------------------------------------------------------------------
    def inner_step(self, theta: Params, fast: Params, x: Tensor, y: Tensor, step: int, training: bool) -> Params:
        """fast - lr * grad of the support loss (through the gradient when second order)."""
        second_order = training and self.second_order

        def step_fn(*values: Tensor) -> tuple[Tensor, ...]:
            current = dict(zip(fast, values))
            loss_fn = lambda f: task_loss(self.forward_with(theta, f, x, step), y, self.task)
            return tuple(
                sgd_step(current, inner_grads(loss_fn, current, second_order), self.lrs(step, training)).values()
            )

        if second_order and self.checkpoint_inner:
            return dict(zip(fast, checkpointed(step_fn, *fast.values())))
        return dict(zip(fast, step_fn(*fast.values())))

    def adapt_and_score(
        self, theta: Params, sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor, training: bool
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Adapt on the support set; return (outer loss, final query loss, final query outputs)."""
        steps = self.inner_steps if training else self.eval_inner_steps
        weights = self.step_weights() if training else None
        s_in, q_in = self.embed(theta, sx), self.embed(theta, qx)
        fast = {n: theta[n] for n in self.fast_names()}
        outer = sx.new_zeros(())
        for step in range(steps):
            fast = self.inner_step(theta, fast, s_in, sy, step, training)
            if weights is not None and step < steps - 1:
                outer = outer + weights[step] * task_loss(self.forward_with(theta, fast, q_in, step), qy, self.task)
        out = self.forward_with(theta, fast, q_in, steps - 1)
        final = task_loss(out, qy, self.task)
        outer = outer + (weights[-1] if weights is not None else 1.0) * final
        return outer, final, out

    # --- the MetaLearner interface ------------------------------------------------------------------------
    def meta_loss(self, batch: EpisodeBatch) -> StepOutput:
        theta = self.theta()
        one = lambda sx, sy, qx, qy: self.adapt_and_score(theta, sx, sy, qx, qy, training=True)
        mapped = map_task_gradients(one, batch, self.path("train"), self)
        final, outputs = mapped.outputs
        return StepOutput(mapped.loss, self.step_metrics(final.detach(), outputs, batch.query_y), mapped.grads)

    def task_predictor(self) -> Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]:
        theta = self.theta(detach=True)
        return lambda sx, sy, qx, qy: self.adapt_and_score(theta, sx, sy, qx, qy, training=False)[2]
