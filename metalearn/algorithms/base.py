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
from metalearn.execution import precision, ranks
from metalearn.metrics import lower_is_better


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
    #: whether the learner takes the number of ways from each episode (metric learners, whose outputs are one per
    #: class of the episode), so it can train and test on episodes of different ways; False where an output layer of
    #: n_way units fixes them (the MAML family)
    any_ways: bool = False
    #: whether the learner takes video clips (a backbone whose `frames` is set gives per-frame features
    #: [N, T, D]): "never", "also" (images too) or "only" (learners that use the order of frames)
    clips: str = "never"
    #: the torch.compile backend of the vmapped per-task function (device.compile; metalearn.execution.compiled),
    #: or None: run as it is
    compile_backend: str | None = None

    def __init__(self, backbone: nn.Module, task: str, n_way: int) -> None:
        super().__init__()
        if task not in self.tasks:
            raise ConfigError(
                f"algorithm {type(self).__name__} does not support {task} data; it supports {', '.join(self.tasks)}"
            )
        frames = getattr(backbone, "frames", None)
        if frames is not None and self.clips == "never":
            raise ConfigError(
                f"algorithm {type(self).__name__} does not take video clips, and the data set gives clips of {frames} "
                "frames; choose algorithm=protonet (frames averaged), otam or trx"
            )
        if frames is None and self.clips == "only":
            raise ConfigError(
                f"algorithm {type(self).__name__} compares the frames of video clips, and needs a clip data set (such "
                "as dataset=glyph_clips) with a per-frame backbone (model=conv4 or resnet12)"
            )
        self.backbone = backbone
        self.task = task
        self.n_way = n_way
        self.out_dim = n_way if task == "classification" else 1

    @property
    def metric(self) -> str:
        """The evaluation metric: "accuracy" (classification), "mse" (regression) or "return" (reinforcement)."""
        return "accuracy" if self.task == "classification" else "mse"

    @property
    def higher_is_better(self) -> bool:
        """Whether a larger value of the metric is better (the best checkpoint has the best validation value)."""
        return not lower_is_better(self.metric)

    def meta_loss(self, batch: EpisodeBatch) -> StepOutput:
        """The meta-training loss of a meta-batch of B episodes, and its metrics."""
        raise NotImplementedError

    def set_progress(self, iteration: int, total: int) -> None:
        """Called before each meta-iteration (1-based); for schedules such as derivative-order annealing."""

    def outer_update(self, out: StepOutput, optimizer: torch.optim.Optimizer, grad_clip: float | None) -> None:
        """Apply one outer update from `out`. The default backpropagates the meta-loss and steps the optimiser;
        algorithms whose outer update is not a loss gradient (Reptile) override this one hook. Where the meta-batch
        is split over processes, each computes the gradient of its tasks' mean loss, and the meta-batch's is
        assembled (metalearn.execution.ranks) before it is clipped."""
        optimizer.zero_grad(set_to_none=True)
        scaler = precision.scaler()  # device.precision=fp16: the loss is scaled so that small gradients survive
        if out.grads is None:
            (out.loss if scaler is None else scaler.scale(out.loss)).backward()
        else:
            # (computed where the tasks ran, unscaled: scaled here only so that the one unscale_ below fits them)
            for p, g in zip(self.parameters(), out.grads, strict=True):
                p.grad = g if scaler is None or g is None else g * scaler.get_scale()
        ranks.reduce_gradients(list(self.parameters()))
        if scaler is not None:
            scaler.unscale_(optimizer)
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.parameters(), grad_clip)
        if scaler is None:
            optimizer.step()
            return
        scale = scaler.get_scale()
        scaler.step(optimizer)  # skipped if the scaled gradient overflowed
        scaler.update()
        if scale > scaler.get_scale() >= 1.0:  # it did: nothing was applied, and the scale is lowered for the next step
            optimizer.zero_grad(set_to_none=True)
        # below a scale of 1 the gradient is not finite whatever the scale: it stays, and the trainer stops the run

    def predict_batch(self, batch: EpisodeBatch) -> Tensor:
        """Adapt on each episode's support set; outputs for its query set, [B, Q, n_way] logits or [B, Q, 1]."""
        raise NotImplementedError

    def score_batch(self, batch: EpisodeBatch) -> dict[str, Tensor]:
        """Each episode's scores [B] by name, `metric` first (others, such as a learning curve, are reported beside
        it): by default the metric of predict_batch's outputs against the query labels."""
        return {self.metric: task_metric(self.predict_batch(batch), batch.query_y, self.task)}

    def ways(self, batch: Episode) -> int:
        """The episode's number of classes: its own where it says (training and test episodes may differ)."""
        return batch.n_way if batch.n_way is not None and self.any_ways else self.n_way

    def embed_episodes(self, batch: EpisodeBatch) -> tuple[Tensor, Tensor]:
        """The backbone on each episode's support and query images together, one pass per episode, so BatchNorm's
        batch statistics are each episode's own: support [B, S, *F] and query [B, Q, *F] features."""
        s = batch.support_x.shape[1]
        features = torch.stack([self.backbone(torch.cat([e.support_x, e.query_x])) for e in batch.episodes()])
        return features[:, :s], features[:, s:]

    def episode_loss(self, logits: Tensor, targets: Tensor) -> StepOutput:
        """The mean over episodes of each episode's query cross-entropy: logits [B, Q, n], targets [B, Q]."""
        losses = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none").mean(-1)
        return StepOutput(losses.mean(), self.step_metrics(losses.detach(), logits, targets))

    def predict(self, episode: Episode) -> Tensor:
        """predict_batch for one episode: [Q, n_way] logits or [Q, 1] values."""
        return self.predict_batch(EpisodeBatch.of(episode))[0]

    def step_metrics(self, losses: Tensor, outputs: Tensor, targets: Tensor) -> dict[str, float]:
        """Training metrics of a meta-batch: mean query loss and accuracy or MSE."""
        key = "accuracy" if self.task == "classification" else "mse"
        return {"loss": float(losses.mean()), key: float(task_metric(outputs.detach(), targets, self.task).mean())}


class EpisodeClassifier(MetaLearner):
    """A learner that classifies each episode's queries from its support set in one forward pass, with no inner
    loop (metric learners, closed-form heads): its outputs are one logit per class of the episode, so it takes the
    ways from each episode, and it is trained by the query cross-entropy unless it says otherwise.

    Args:
        backbone, task, n_way: as MetaLearner.
        batch_norm (str, "running"): "running" (standard BatchNorm) or "transductive" (set_batch_norm_mode).
    """

    tasks = ("classification",)
    any_ways = True

    def __init__(self, backbone: nn.Module, task: str, n_way: int, batch_norm: str = "running") -> None:
        super().__init__(backbone, task, n_way)
        set_batch_norm_mode(backbone, batch_norm)

    def meta_loss(self, batch: EpisodeBatch) -> StepOutput:
        return self.episode_loss(self.predict_batch(batch), batch.query_y)
