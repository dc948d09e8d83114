"""The one interface every meta-algorithm implements.

The trainer, evaluator, checkpointing and sweeps only call `meta_loss`, `outer_update` and
`predict_batch` (or `predict`), so they never branch on which algorithm runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metalearn.episode import Episode, EpisodeBatch
from metalearn.errors import ConfigError


@dataclass
class StepOutput:
    """A meta-training step: the loss to backpropagate and metrics to log (floats).

    grads: the meta-gradient already computed, one entry per learner.parameters() (None where a parameter
    has none), for learners that differentiate each task where it runs (batching=threads); `loss` is then
    a detached value for logging and checks, and outer_update applies `grads` instead of backpropagating.
    """

    loss: Tensor
    metrics: dict[str, float] = field(default_factory=dict)
    grads: list[Tensor | None] | None = None


def task_loss(output: Tensor, target: Tensor, task: str) -> Tensor:
    """Cross-entropy for classification logits, mean squared error for regression."""
    return F.cross_entropy(output, target) if task == "classification" else F.mse_loss(output, target)


def task_metric(output: Tensor, target: Tensor, task: str) -> Tensor:
    """Per-episode metric: accuracy (fraction correct) or MSE. output [..., Q, D] -> [...]."""
    if task == "classification":
        return (output.argmax(-1) == target).float().mean(-1)
    return (output - target).pow(2).mean(dim=(-2, -1))


def set_batch_norm_mode(module: nn.Module, mode: str) -> None:
    """Make BatchNorm's behaviour explicit (`algorithm.batch_norm`, checked by the algorithm's schema).

    transductive: every forward pass normalises with the statistics of its own batch (each task's
      support or query set), in training and evaluation alike; no running statistics exist. This is
      MAML's setting and the one that works under torch.func.vmap.
    running: standard BatchNorm; batch statistics in training, running averages in evaluation.
    """
    if mode == "running":
        return
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.track_running_stats = False
            m.running_mean = None
            m.running_var = None
            m.num_batches_tracked = None


class MetaLearner(nn.Module):
    """Base class: subclasses implement `meta_loss` (training) and `predict_batch` (evaluation).

    Args:
        backbone: the feature extractor, inputs [N, *input_shape] -> features [N, backbone.out_features].
        task: "classification" or "regression", from the data set.
        n_way: classes per episode; the output size is n_way for classification and 1 for regression.
    """

    #: the task kinds the learner supports; subclasses narrow this
    tasks: tuple[str, ...] = ("classification", "regression")

    def __init__(self, backbone: nn.Module, task: str, n_way: int) -> None:
        super().__init__()
        if task not in self.tasks:
            raise ConfigError(
                f"algorithm {type(self).__name__} does not support {task} data; it supports {', '.join(self.tasks)}"
            )
        self.backbone = backbone
        self.task = task
        self.n_way = n_way
        self.out_dim = n_way if task == "classification" else 1

    def meta_loss(self, batch: EpisodeBatch) -> StepOutput:
        """The meta-training loss of a meta-batch of B episodes, and its metrics."""
        raise NotImplementedError

    def set_progress(self, iteration: int, total: int) -> None:
        """Called before each meta-iteration (1-based); for schedules such as derivative-order annealing."""

    def outer_update(self, out: StepOutput, optimizer: torch.optim.Optimizer, grad_clip: float | None) -> None:
        """Apply one outer update from `out`. The default backpropagates the meta-loss and steps the optimiser;
        algorithms whose outer update is not a loss gradient (Reptile) override this one hook."""
        optimizer.zero_grad(set_to_none=True)
        if out.grads is None:
            out.loss.backward()
        else:
            for p, g in zip(self.parameters(), out.grads, strict=True):
                p.grad = g
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.parameters(), grad_clip)
        optimizer.step()

    def predict_batch(self, batch: EpisodeBatch) -> Tensor:
        """Adapt on each episode's support set; outputs for its query set, [B, Q, n_way] logits or [B, Q, 1]."""
        raise NotImplementedError

    def predict(self, episode: Episode) -> Tensor:
        """predict_batch for one episode: [Q, n_way] logits or [Q, 1] values."""
        return self.predict_batch(EpisodeBatch.of(episode))[0]

    def step_metrics(self, losses: Tensor, outputs: Tensor, targets: Tensor) -> dict[str, float]:
        """Training metrics of a meta-batch: mean query loss and accuracy or MSE."""
        key = "accuracy" if self.task == "classification" else "mse"
        return {"loss": float(losses.mean()), key: float(task_metric(outputs.detach(), targets, self.task).mean())}
