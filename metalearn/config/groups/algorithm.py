"""Schemas of the `algorithm` group, and the checks of the execution keys every gradient-based learner has."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, List, Optional

from metalearn.config.options import (
    BASELINE_HEADS,
    BATCH_NORM_MODES,
    BATCHING,
    INNER_DATA,
    INNER_OPTIMIZERS,
    PROTO_DISTANCES,
    REPTILE_EVALUATION,
)
from metalearn.config.schema import Schema, at_least, one_of, positive
from metalearn.errors import ConfigError


def resolve_batching(batching: str, batch_norm: str = "transductive", prefix: str = "algorithm") -> str:
    """Check `batching` against `batch_norm`; `auto` stays `auto` unless only the loop is possible."""
    one_of(f"{prefix}.batching", batching, BATCHING)
    if batching == "auto" and batch_norm != "transductive":
        return "loop"
    if batching in ("vmap", "threads") and batch_norm != "transductive":
        raise ConfigError(
            f"{prefix}.batching={batching} needs {prefix}.batch_norm=transductive (per-task batch statistics, no "
            f"running statistics); set {prefix}.batch_norm=transductive or {prefix}.batching=loop"
        )
    return batching


def check_execution(prefix: str, batching: str, batch_norm: str, checkpoint_inner: bool = False) -> None:
    """The gradient-based family's execution keys: vmap and threads need per-task batch statistics, and
    activation checkpointing of the inner loop runs on the loop and threads paths only."""
    one_of(f"{prefix}.batch_norm", batch_norm, BATCH_NORM_MODES)
    resolve_batching(batching, batch_norm, prefix)
    if checkpoint_inner and batching == "vmap":
        raise ConfigError(
            f"{prefix}.checkpoint_inner=true needs {prefix}.batching=loop, threads or auto: torch.func transforms "
            "do not support the saved-tensor hooks that activation checkpointing uses"
        )


def check_discounting(prefix: str, gamma: float, gae_lambda: float) -> None:
    """The meta-RL learners' discount and GAE lambda, each in [0, 1]."""
    for key, value in (("gamma", gamma), ("gae_lambda", gae_lambda)):
        if not 0 <= value <= 1:
            raise ConfigError(f"{prefix}.{key}={value} is invalid: must be in [0, 1]")


@dataclass
class ProtoNetConfig(Schema):
    """Prototypical Networks (metalearn.algorithms.protonet.ProtoNet)."""

    _target_: str = "metalearn.algorithms.protonet.ProtoNet"
    distance: str = "euclidean"  # euclidean (squared, the paper's) | cosine (times a learned temperature)
    temperature: float = 10.0  # cosine: the logits' initial scale, learned
    batch_norm: str = "running"  # standard BatchNorm: batch statistics in training, running averages at test

    def check(self, prefix: str) -> None:
        one_of(f"{prefix}.distance", self.distance, PROTO_DISTANCES)
        positive(f"{prefix}.temperature", self.temperature)
        one_of(f"{prefix}.batch_norm", self.batch_norm, BATCH_NORM_MODES)


@dataclass
class OTAMConfig(Schema):
    """OTAM, ordered temporal alignment of video clips (metalearn.algorithms.otam.OTAM)."""

    _target_: str = "metalearn.algorithms.otam.OTAM"
    smoothing: float = 0.1  # the soft minimum's smoothing (the paper's lambda); 0: hard minimum (plain DTW)
    batch_norm: str = "running"

    def check(self, prefix: str) -> None:
        at_least(f"{prefix}.smoothing", self.smoothing, 0)
        one_of(f"{prefix}.batch_norm", self.batch_norm, BATCH_NORM_MODES)


@dataclass
class TRXConfig(Schema):
    """TRX, temporal-relational cross-transformers on video clips (metalearn.algorithms.trx.TRX)."""

    _target_: str = "metalearn.algorithms.trx.TRX"
    cardinalities: List[int] = field(default_factory=lambda: [2, 3])  # frames per tuple (pairs, triples)
    dim: int = 1152  # keys and values (the paper's)
    position_scale: float = 0.1  # the positional encoding's scale
    dropout: float = 0.1  # on the frame features, in training
    batch_norm: str = "running"

    def check(self, prefix: str) -> None:
        cards = list(self.cardinalities)
        if not cards or len(set(cards)) != len(cards) or min(cards) < 1:
            raise ConfigError(
                f"{prefix}.cardinalities={cards} is invalid: must be distinct tuple sizes of at least 1, e.g. [2, 3]"
            )
        at_least(f"{prefix}.dim", self.dim, 1)
        at_least(f"{prefix}.position_scale", self.position_scale, 0)
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"{prefix}.dropout={self.dropout} is invalid: must be in [0, 1)")
        one_of(f"{prefix}.batch_norm", self.batch_norm, BATCH_NORM_MODES)


@dataclass
class MatchingNetConfig(Schema):
    """Matching Networks (metalearn.algorithms.matchingnet.MatchingNet)."""

    _target_: str = "metalearn.algorithms.matchingnet.MatchingNet"
    fce: bool = False  # full-context embeddings: a bidirectional LSTM over the support, an attention LSTM per query
    fce_steps: Optional[int] = None  # the attention LSTM's steps (null: one per support example)
    temperature: Optional[float] = None  # null: the paper's softmax of plain cosines; a number: a learned scale
    batch_norm: str = "running"

    def check(self, prefix: str) -> None:
        if self.fce_steps is not None:
            at_least(f"{prefix}.fce_steps", self.fce_steps, 1)
        if self.temperature is not None:
            positive(f"{prefix}.temperature", self.temperature)
        one_of(f"{prefix}.batch_norm", self.batch_norm, BATCH_NORM_MODES)


@dataclass
class RelationNetConfig(Schema):
    """Relation Networks (metalearn.algorithms.relationnet.RelationNet)."""

    _target_: str = "metalearn.algorithms.relationnet.RelationNet"
    relation_channels: int = 64  # the relation module's convolutions
    relation_hidden: int = 8  # its hidden fully connected layer
    batch_norm: str = "running"

    def check(self, prefix: str) -> None:
        at_least(f"{prefix}.relation_channels", self.relation_channels, 1)
        at_least(f"{prefix}.relation_hidden", self.relation_hidden, 1)
        one_of(f"{prefix}.batch_norm", self.batch_norm, BATCH_NORM_MODES)


@dataclass
class R2D2Config(Schema):
    """R2D2, the closed-form ridge-regression head (metalearn.algorithms.r2d2.R2D2)."""

    _target_: str = "metalearn.algorithms.r2d2.R2D2"
    lam: float = 1.0  # the ridge regulariser's initial value (learned)
    scale: float = 1.0  # the logits' initial scale alpha (learned)
    bias: float = 0.0  # the logits' initial shift beta (learned)
    batch_norm: str = "running"

    def check(self, prefix: str) -> None:
        positive(f"{prefix}.lam", self.lam)
        one_of(f"{prefix}.batch_norm", self.batch_norm, BATCH_NORM_MODES)


@dataclass
class MetaOptNetConfig(Schema):
    """MetaOptNet, the differentiable multi-class SVM head (metalearn.algorithms.metaoptnet.MetaOptNet)."""

    _target_: str = "metalearn.algorithms.metaoptnet.MetaOptNet"
    c: float = 0.1  # the SVM's regularisation constant C (the paper's)
    ridge: float = 1.0  # ridge on the dual QP: a unique solution and derivative
    scale: float = 1.0  # the logits' initial scale (learned)
    max_iter: int = 1000  # the QP solver's iteration limit
    tol: float = 1e-6  # its relative tolerance
    batch_norm: str = "running"

    def check(self, prefix: str) -> None:
        for key in ("c", "ridge", "tol"):
            positive(f"{prefix}.{key}", getattr(self, key))
        at_least(f"{prefix}.max_iter", self.max_iter, 1)
        one_of(f"{prefix}.batch_norm", self.batch_norm, BATCH_NORM_MODES)


@dataclass
class BaselineConfig(Schema):
    """Baseline and Baseline++ (metalearn.algorithms.baseline.Baseline): supervised pre-training on mini-batches
    (sampler=batches), a new head fitted on each test episode's support set."""

    _target_: str = "metalearn.algorithms.baseline.Baseline"
    head: str = "linear"  # linear (Baseline) | cosine (Baseline++)
    scale: Optional[float] = None  # cosine head's scale (null: 2 up to 200 classes, else 10, as Chen et al.)
    train_classes: Optional[int] = None  # the pre-training head's classes (null: the training split's)
    finetune_epochs: int = 100  # passes over each test episode's support set
    finetune_batch_size: int = 4
    finetune_lr: float = 0.01
    batch_norm: str = "running"

    def check(self, prefix: str) -> None:
        one_of(f"{prefix}.head", self.head, BASELINE_HEADS)
        if self.scale is not None:
            positive(f"{prefix}.scale", self.scale)
        if self.train_classes is not None:
            at_least(f"{prefix}.train_classes", self.train_classes, 2)
        at_least(f"{prefix}.finetune_epochs", self.finetune_epochs, 0)
        at_least(f"{prefix}.finetune_batch_size", self.finetune_batch_size, 1)
        positive(f"{prefix}.finetune_lr", self.finetune_lr)
        one_of(f"{prefix}.batch_norm", self.batch_norm, BATCH_NORM_MODES)


@dataclass
class MAMLConfig(Schema):
    """MAML and first-order MAML (metalearn.algorithms.maml.MAML)."""

    _target_: str = "metalearn.algorithms.maml.MAML"
    inner_lr: float = 0.4
    inner_steps: int = 1
    eval_inner_lr: Optional[float] = None  # None: the same as inner_lr
    eval_inner_steps: int = 3
    first_order: bool = False
    batch_norm: str = "transductive"  # each task's own batch statistics (needed by vmap and threads)
    batching: str = "auto"  # vmap | loop | threads | auto (metalearn.execution)
    checkpoint_inner: bool = False  # recompute inner-step activations in backward: less memory for many steps

    def check(self, prefix: str) -> None:
        positive(f"{prefix}.inner_lr", self.inner_lr)
        if self.eval_inner_lr is not None:
            positive(f"{prefix}.eval_inner_lr", self.eval_inner_lr)
        at_least(f"{prefix}.inner_steps", self.inner_steps, 1)
        at_least(f"{prefix}.eval_inner_steps", self.eval_inner_steps, 0)
        check_execution(prefix, self.batching, self.batch_norm, self.checkpoint_inner)


@dataclass
class MAMLPlusPlusConfig(MAMLConfig):
    """MAML++ (metalearn.algorithms.mamlpp.MAMLPlusPlus): MAML with the five training fixes switched on."""

    _target_: str = "metalearn.algorithms.mamlpp.MAMLPlusPlus"
    inner_lr: float = 0.1
    inner_steps: int = 5
    eval_inner_steps: int = 5
    multi_step_loss: bool = True  # MSL: query loss after every step, weights annealed towards the last step
    multi_step_loss_iterations: int = 500  # annealing length (the paper: 10 epochs of 500 iterations)
    per_layer_inner_lr: bool = True  # LSLR: learnable inner lr per parameter tensor and step
    per_step_batch_norm: bool = True  # BNWB: BatchNorm weight/bias per step; with batch_norm=running also BNRS
    first_order_iterations: int = 2500  # DA: first order for iterations 1..N (the paper: 50 epochs of 500)

    def check(self, prefix: str) -> None:
        super().check(prefix)
        at_least(f"{prefix}.multi_step_loss_iterations", self.multi_step_loss_iterations, 0)
        at_least(f"{prefix}.first_order_iterations", self.first_order_iterations, 0)


@dataclass
class ANILConfig(MAMLConfig):
    """ANIL (metalearn.algorithms.anil.ANIL): only the head adapts in the inner loop."""

    _target_: str = "metalearn.algorithms.anil.ANIL"


@dataclass
class MetaSGDConfig(MAMLConfig):
    """Meta-SGD (metalearn.algorithms.metasgd.MetaSGD): a learned inner lr per parameter entry."""

    _target_: str = "metalearn.algorithms.metasgd.MetaSGD"
    eval_inner_steps: int = 1  # the learned rates are fitted to inner_steps steps


@dataclass
class ReptileConfig(Schema):
    """Reptile (metalearn.algorithms.reptile.Reptile), the paper's Omniglot settings."""

    _target_: str = "metalearn.algorithms.reptile.Reptile"
    inner_optimizer: str = "adam"  # adam | sgd
    inner_lr: float = 0.001
    inner_steps: int = 5
    adam_betas: List[float] = field(default_factory=lambda: [0.0, 0.999])
    inner_data: str = "all"  # all: fit the task's support and query images in meta-training | support
    eval_inner_lr: Optional[float] = None  # None: the same as inner_lr
    eval_inner_steps: int = 50
    outer_lr: float = 1.0  # epsilon at the first iteration, annealed linearly to outer_lr_final
    outer_lr_final: float = 0.0
    evaluation: str = "transductive"  # transductive | non_transductive (each query image alone with the support)
    batch_norm: str = "transductive"
    batching: str = "auto"

    def check(self, prefix: str) -> None:
        one_of(f"{prefix}.inner_optimizer", self.inner_optimizer, INNER_OPTIMIZERS)
        positive(f"{prefix}.inner_lr", self.inner_lr)
        if self.eval_inner_lr is not None:
            positive(f"{prefix}.eval_inner_lr", self.eval_inner_lr)
        at_least(f"{prefix}.inner_steps", self.inner_steps, 1)
        at_least(f"{prefix}.eval_inner_steps", self.eval_inner_steps, 0)
        if len(self.adam_betas) != 2 or not all(0 <= b < 1 for b in self.adam_betas):
            raise ConfigError(f"{prefix}.adam_betas={list(self.adam_betas)} is invalid: must be two numbers in [0, 1)")
        one_of(f"{prefix}.inner_data", self.inner_data, INNER_DATA)
        positive(f"{prefix}.outer_lr", self.outer_lr)
        at_least(f"{prefix}.outer_lr_final", self.outer_lr_final, 0)
        one_of(f"{prefix}.evaluation", self.evaluation, REPTILE_EVALUATION)
        check_execution(prefix, self.batching, self.batch_norm)


@dataclass
class PolicyGradientConfig(Schema):
    """The keys MAML's reinforcement-learning learners share: the inner policy-gradient steps, evaluation's steps,
    the discounting and the policy's initial standard deviation."""

    REINFORCEMENT: ClassVar[bool] = True  # of reinforcement learning (validate._check_reinforcement)
    inner_lr: float = 0.1  # the inner vanilla policy-gradient step
    inner_steps: int = 1
    eval_inner_steps: int = 3  # evaluation: returns after 0..eval_inner_steps steps; the headline is the last
    eval_later_lr: Optional[float] = None  # evaluation's steps after the first (Finn et al.: 0.05); None: inner_lr
    first_order: bool = False
    gamma: float = 0.99
    gae_lambda: float = 1.0
    init_std: float = 1.0  # the Gaussian policy's initial standard deviation
    batching: str = "auto"  # vmap | loop | threads | auto (metalearn.execution)

    def check(self, prefix: str) -> None:
        positive(f"{prefix}.inner_lr", self.inner_lr)
        if self.eval_later_lr is not None:
            positive(f"{prefix}.eval_later_lr", self.eval_later_lr)
        at_least(f"{prefix}.inner_steps", self.inner_steps, 1)
        at_least(f"{prefix}.eval_inner_steps", self.eval_inner_steps, 0)
        check_discounting(prefix, self.gamma, self.gae_lambda)
        positive(f"{prefix}.init_std", self.init_std)
        resolve_batching(self.batching, "transductive", prefix)


@dataclass
class MAMLTRPOConfig(PolicyGradientConfig):
    """MAML-TRPO for reinforcement learning (metalearn.algorithms.maml_trpo.MAMLTRPO), MAML's 2D navigation settings."""

    _target_: str = "metalearn.algorithms.maml_trpo.MAMLTRPO"
    max_kl: float = 0.01  # TRPO's KL bound
    cg_iterations: int = 10
    cg_damping: float = 1e-5
    line_search_steps: int = 15
    backtrack_ratio: float = 0.8

    def check(self, prefix: str) -> None:
        super().check(prefix)
        positive(f"{prefix}.max_kl", self.max_kl)
        at_least(f"{prefix}.cg_damping", self.cg_damping, 0)
        at_least(f"{prefix}.cg_iterations", self.cg_iterations, 1)
        at_least(f"{prefix}.line_search_steps", self.line_search_steps, 1)
        if not 0 < self.backtrack_ratio < 1:
            raise ConfigError(f"{prefix}.backtrack_ratio={self.backtrack_ratio} is invalid: must be in (0, 1)")


@dataclass
class MAMLPPOConfig(PolicyGradientConfig):
    """MAML-PPO for reinforcement learning (metalearn.algorithms.maml_ppo.MAMLPPO): the trainer's optimiser steps on
    PPO's clipped surrogate."""

    _target_: str = "metalearn.algorithms.maml_ppo.MAMLPPO"
    ppo_epochs: int = 5  # optimiser steps on the clipped surrogate per meta-iteration
    clip_ratio: float = 0.2

    def check(self, prefix: str) -> None:
        super().check(prefix)
        at_least(f"{prefix}.ppo_epochs", self.ppo_epochs, 1)
        if not 0 < self.clip_ratio < 1:
            raise ConfigError(f"{prefix}.clip_ratio={self.clip_ratio} is invalid: must be in (0, 1)")
