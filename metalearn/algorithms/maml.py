"""MAML (Finn, Abbeel & Levine, ICML 2017), first-order MAML, and the MAML++ options (Antoniou, Edwards
& Storkey, "How to train your MAML", ICLR 2019).

The inner loop takes `inner_steps` SGD steps at `inner_lr` on each task's support set; the outer loss
is the query loss of the adapted parameters. Second-order MAML backpropagates through the inner
gradient steps; first-order MAML (`first_order=true`) takes every inner gradient at detached
parameters, so no second-order graph exists and the meta-gradient is the query gradient at the adapted
parameters. Evaluation uses its own `eval_inner_steps` / `eval_inner_lr` (the paper: 1 step at 0.4 in
training and 3 at test on Omniglot 5-way; 5 steps at 0.01 and 10 at test on mini-ImageNet).
BatchNorm is transductive by default, as in the paper: each task's batch statistics, no running stats.

MAML++ options (all off by default; `algorithm=maml++` turns them on):
  multi_step_loss (MSL): the outer loss sums the query loss after every inner step with weights that
    start uniform and anneal over `multi_step_loss_iterations` until only the final step counts
    (non-final weights floor at 0.03 / inner_steps, as in the reference code).
  per_layer_inner_lr (LSLR): one learnable inner learning rate per parameter tensor and inner step.
    Evaluation uses the learned rates (steps past inner_steps reuse the last one); eval_inner_lr is unused.
  per_step_batch_norm (BNWB + BNRS): BatchNorm weight and bias per inner step, meta-learned in the outer
    loop and not adapted in the inner loop; with batch_norm=running also running statistics per inner
    step: every forward pass of inner step s (support and query) updates step s's running mean and
    variance, and evaluation normalises step s's activations with them. With transductive BatchNorm (the
    default, and the reference code's training=True everywhere) every pass normalises with its own batch
    statistics, so no running statistics exist to keep.
  first_order_iterations (DA): first-order for iterations 1..N, second-order afterwards.
  Cosine annealing of the outer learning rate is the trainer's: trainer.scheduler=cosine.

Execution: `batching` (vmap | loop | threads | auto, see functional.py) and `checkpoint_inner` (recompute
the activations of each second-order inner step in the backward pass, so 10+ inner steps fit in memory;
loop and threads paths, as torch.func does not support checkpointing's saved-tensor hooks).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from metalearn.algorithms.base import MetaLearner, StepOutput, set_batch_norm_mode, task_loss
from metalearn.algorithms.functional import (
    BatchingChoice,
    Params,
    check_checkpoint_inner,
    checkpointed,
    inner_grads,
    map_tasks,
    resolve_batching,
    sgd_step,
)
from metalearn.algorithms.task_threads import call_module
from metalearn.sampling.episode import Episode, EpisodeBatch


def _key(name: str) -> str:
    """Parameter names contain dots, which module attribute names may not."""
    return name.replace(".", "__")


class MAML(BatchingChoice, MetaLearner):
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
        multi_step_loss: bool = False,
        multi_step_loss_iterations: int = 0,
        per_layer_inner_lr: bool = False,
        per_step_batch_norm: bool = False,
        first_order_iterations: int = 0,
    ) -> None:
        super().__init__(backbone, task, n_way)
        self.head = nn.Linear(backbone.out_features, self.out_dim)
        self.net = nn.Sequential(backbone, self.head)
        set_batch_norm_mode(self.net, batch_norm)
        resolve_batching(batching, batch_norm)  # reject bad values now, not mid-run
        check_checkpoint_inner(checkpoint_inner, batching)
        self.batch_norm, self.batching, self.checkpoint_inner = batch_norm, batching, checkpoint_inner
        self.inner_lr, self.inner_steps = inner_lr, inner_steps
        self.eval_inner_lr = inner_lr if eval_inner_lr is None else eval_inner_lr
        self.eval_inner_steps = eval_inner_steps
        self.first_order = first_order
        self.multi_step_loss, self.multi_step_loss_iterations = multi_step_loss, multi_step_loss_iterations
        self.first_order_iterations = first_order_iterations
        self.iteration = 0
        self.bn_steps = nn.ParameterDict()
        if per_step_batch_norm:
            for name, p in self.net.named_parameters():
                if self._is_batch_norm(name):
                    self.bn_steps[_key(name)] = nn.Parameter(p.detach().clone().expand(inner_steps, *p.shape).clone())
        self.bn_stats = nn.Module()  # per-step running statistics (BNRS), [inner_steps, C] per BatchNorm buffer
        self.stat_names: list[str] = []
        if per_step_batch_norm and batch_norm == "running":
            for name, buffer in self.net.named_buffers():
                if name.endswith((".running_mean", ".running_var")):
                    self.stat_names.append(name)
                    self.bn_stats.register_buffer(
                        _key(name), buffer.detach().clone().expand(inner_steps, *buffer.shape).clone()
                    )
        self.step_lrs = nn.ParameterDict()
        if per_layer_inner_lr:
            for name in self.fast_names():
                self.step_lrs[_key(name)] = nn.Parameter(torch.full((inner_steps,), float(inner_lr)))

    # --- schedules (MAML++) ---------------------------------------------------------------------
    def set_progress(self, iteration: int, total: int) -> None:
        self.iteration = iteration

    def pick_batching(self, purpose: str) -> str:
        """As BatchingChoice, but `auto` trains on the loop when checkpoint_inner asks for recomputation."""
        if self.checkpoint_inner and purpose == "train" and resolve_batching(self.batching, self.batch_norm) == "auto":
            return "loop"
        return super().pick_batching(purpose)

    @property
    def second_order(self) -> bool:
        """Second order unless first_order, or still within the first `first_order_iterations` iterations."""
        return not self.first_order and (
            self.first_order_iterations == 0 or self.iteration > self.first_order_iterations
        )

    def step_weights(self) -> list[float] | None:
        """Multi-step loss weights per inner step (None: only the final step's loss)."""
        if not self.multi_step_loss or self.inner_steps == 1:
            return None
        n = self.inner_steps
        done = min(self.iteration / max(self.multi_step_loss_iterations, 1), 1.0)
        non_final = max((1.0 - done) / n, 0.03 / n)
        return [non_final] * (n - 1) + [1.0 - (n - 1) * non_final]

    # --- functional pieces (overridden by ANIL / Meta-SGD) -----------------------------------------
    def _is_batch_norm(self, name: str) -> bool:
        module = self.net.get_submodule(name.rsplit(".", 1)[0])
        return isinstance(module, nn.modules.batchnorm._BatchNorm)

    def theta(self, detach: bool = False) -> Params:
        """The meta-parameters of the network, by name."""
        return {n: (p.detach() if detach else p) for n, p in self.net.named_parameters()}

    def fast_names(self) -> list[str]:
        """Names of the parameters the inner loop adapts: all but per-step BatchNorm ones for MAML."""
        return [n for n, _ in self.net.named_parameters() if not (len(self.bn_steps) and self._is_batch_norm(n))]

    def embed(self, theta: Params, x: Tensor) -> Tensor:
        """Inputs of the adapted part; ANIL computes the body's features here, once per task."""
        return x

    def forward_with(self, theta: Params, fast: Params, x: Tensor, step: int) -> Tensor:
        """Outputs with the adapted parameters `fast` (and per-step BatchNorm weights of inner step `step`)."""
        params = {**theta, **fast}
        if len(self.bn_steps):
            index = min(max(step, 0), self.inner_steps - 1)
            params.update({n: self.bn_steps[_key(n)][index] for n in theta if _key(n) in self.bn_steps})
            # views into step `index`'s statistics: BatchNorm's in-place running update lands in them
            params.update({n: self.bn_stats.get_buffer(_key(n))[index] for n in self.stat_names})
        return call_module(self.net, params, x)

    def lrs(self, step: int, training: bool) -> dict[str, float | Tensor]:
        """Inner learning rate per fast parameter at inner step `step`."""
        if len(self.step_lrs):
            index = min(step, self.inner_steps - 1)
            return {n: self.step_lrs[_key(n)][index] for n in self.fast_names()}
        lr = self.inner_lr if training else self.eval_inner_lr
        return {n: lr for n in self.fast_names()}

    # --- one task -------------------------------------------------------------------------------
    def inner_step(
        self, theta: Params, fast: Params, x: Tensor, y: Tensor, step: int, training: bool, functional: bool
    ) -> Params:
        second_order = training and self.second_order

        def step_fn(*values: Tensor) -> tuple[Tensor, ...]:
            current = dict(zip(fast, values))
            loss_fn = lambda f: task_loss(self.forward_with(theta, f, x, step), y, self.task)  # noqa: E731
            return tuple(
                sgd_step(
                    current, inner_grads(loss_fn, current, second_order, functional), self.lrs(step, training)
                ).values()
            )

        if second_order and self.checkpoint_inner:
            return dict(zip(fast, checkpointed(step_fn, *fast.values())))
        return dict(zip(fast, step_fn(*fast.values())))

    def adapt_and_score(
        self, theta: Params, sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor, training: bool, functional: bool
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Adapt on the support set; return (outer loss, final query loss, final query outputs)."""
        steps = self.inner_steps if training else self.eval_inner_steps
        weights = self.step_weights() if training else None
        s_in, q_in = self.embed(theta, sx), self.embed(theta, qx)
        fast = {n: theta[n] for n in self.fast_names()}
        outer = sx.new_zeros(())
        for step in range(steps):
            fast = self.inner_step(theta, fast, s_in, sy, step, training, functional)
            if weights is not None and step < steps - 1:
                outer = outer + weights[step] * task_loss(self.forward_with(theta, fast, q_in, step), qy, self.task)
        out = self.forward_with(theta, fast, q_in, steps - 1)
        final = task_loss(out, qy, self.task)
        outer = outer + (weights[-1] if weights is not None else 1.0) * final
        return outer, final, out

    # --- the MetaLearner interface --------------------------------------------------------------
    def meta_loss(self, batch: EpisodeBatch) -> StepOutput:
        batching = self.pick_batching("train")
        theta = self.theta()
        if batching == "threads":
            return self._meta_gradient_per_task(theta, batch)

        def one(sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            return self.adapt_and_score(theta, sx, sy, qx, qy, training=True, functional=batching == "vmap")

        outer, final, outputs = map_tasks(one, batch, batching, self)
        return StepOutput(outer.mean(), self.step_metrics(final.detach(), outputs, batch.query_y))

    def _meta_gradient_per_task(self, theta: Params, batch: EpisodeBatch) -> StepOutput:
        """batching=threads: each task's meta-gradient where the task runs, averaged in task order."""
        params = list(self.parameters())
        trained = [p for p in params if p.requires_grad]

        def one(sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor) -> tuple[Tensor, ...]:
            outer, final, out = self.adapt_and_score(theta, sx, sy, qx, qy, training=True, functional=False)
            grads = torch.autograd.grad(outer, trained, allow_unused=True)
            used = torch.tensor([g is not None for g in grads])
            filled = [torch.zeros_like(p) if g is None else g for p, g in zip(trained, grads)]
            return (outer.detach(), final.detach(), out.detach(), used, *filled)

        outer, final, outputs, used, *stacked = map_tasks(one, batch, "threads", self)
        means = {id(p): g.mean(0) for p, g, any_used in zip(trained, stacked, used.any(0).tolist()) if any_used}
        grads = [means.get(id(p)) for p in params]
        return StepOutput(outer.mean(), self.step_metrics(final, outputs, batch.query_y), grads)

    def predict_batch(self, batch: EpisodeBatch) -> Tensor:
        def run(batching: str) -> Tensor:
            theta = self.theta(detach=True)

            def one(sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor) -> tuple[Tensor]:
                return (self.adapt_and_score(theta, sx, sy, qx, qy, training=False, functional=batching == "vmap")[2],)

            return map_tasks(one, batch, batching, self)[0].detach()

        return run(self.pick_batching("eval"))

    def predict(self, episode: Episode) -> Tensor:
        batch = EpisodeBatch(
            episode.support_x[None], episode.support_y[None], episode.query_x[None], episode.query_y[None]
        )
        return self.predict_batch(batch)[0]
