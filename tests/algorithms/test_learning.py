"""Each algorithm learns: the meta-loss falls and test accuracy rises well above an untrained model's."""

from __future__ import annotations

import pytest
import torch

from metalearn.algorithms.maml import MAML
from metalearn.algorithms.matchingnet import MatchingNet
from metalearn.algorithms.metaoptnet import MetaOptNet
from metalearn.algorithms.protonet import ProtoNet
from metalearn.algorithms.r2d2 import R2D2
from metalearn.algorithms.relationnet import RelationNet
from metalearn.data.sinusoid import SinusoidTasks
from metalearn.models.conv4 import Conv4
from metalearn.models.mlp import MLP
from metalearn.sampling.sampler import EpisodeSampler
from metalearn.training.evaluator import evaluate
from tests.support import tiny_glyphs, train_steps


@pytest.fixture(scope="module")
def glyphs():
    return tiny_glyphs()


@pytest.mark.parametrize(
    "name, make, tasks, fall",
    [
        ("protonet", lambda shape: ProtoNet(Conv4(shape, 32), "classification", 5), 1, 0.8),
        ("protonet cosine", lambda shape: ProtoNet(Conv4(shape, 32), "classification", 5, distance="cosine"), 1, 0.8),
        # attention over plain cosines of ReLU features bounds the 1-shot loss below by -log(e / (e + 4)) = 0.91
        ("matchingnet", lambda shape: MatchingNet(Conv4(shape, 32), "classification", 5), 1, 0.9),
        ("matchingnet fce", lambda shape: MatchingNet(Conv4(shape, 32), "classification", 5, fce=True), 1, 0.9),
        ("relationnet", lambda shape: RelationNet(Conv4(shape, 32, pool_blocks=2), "classification", 5), 1, 0.8),
        # regression outputs near 0 and 1 times alpha = 1 start as weak logits: the loss falls as alpha grows
        ("r2d2", lambda shape: R2D2(Conv4(shape, 32), "classification", 5), 1, 0.9),
        ("metaoptnet", lambda shape: MetaOptNet(Conv4(shape, 32), "classification", 5), 1, 0.8),
        ("maml", lambda shape: MAML(Conv4(shape, 32), "classification", 5, batching="loop"), 4, 0.8),
        (
            "fomaml",
            lambda shape: MAML(Conv4(shape, 32), "classification", 5, first_order=True, batching="loop"),
            4,
            0.8,
        ),
    ],
)
def test_learns_glyphs(glyphs, name, make, tasks, fall):
    torch.manual_seed(0)
    sampler = EpisodeSampler(glyphs, q_query=5, tasks_per_batch=tasks, val_episodes=10, test_episodes=100)
    learner = make(glyphs.input_shape)
    before = evaluate(learner, sampler, "test").mean
    losses = train_steps(learner, sampler, 60)
    after = evaluate(learner, sampler, "test").mean
    assert sum(losses[-10:]) < fall * sum(losses[:10]), f"{name}: loss did not fall"
    assert after > 0.2 + 0.3, f"{name}: accuracy {after:.3f} not clearly above chance (0.2)"
    assert after > before + 0.1, f"{name}: accuracy {before:.3f} -> {after:.3f} did not improve"


def test_protonet_trained_on_wider_episodes_scores_5_way_episodes(glyphs):
    """The papers' protocol: training episodes with more classes (here 15-way) than the 5-way test episodes."""
    torch.manual_seed(0)
    sampler = EpisodeSampler(glyphs, q_query=5, train_n_way=15, val_episodes=10, test_episodes=100)
    learner = ProtoNet(Conv4(glyphs.input_shape, 32), "classification", 5)
    assert sampler.train_batch().support_y.shape == (1, 15)
    before = evaluate(learner, sampler, "test").mean
    train_steps(learner, sampler, 60)
    after = evaluate(learner, sampler, "test").mean
    assert after > 0.5 and after > before + 0.1, f"accuracy {before:.3f} -> {after:.3f}"


def test_maml_lowers_sinusoid_mse():
    torch.manual_seed(0)
    sampler = EpisodeSampler(SinusoidTasks(), k_shot=10, q_query=10, tasks_per_batch=10, test_episodes=100)
    learner = MAML(MLP((1,)), "regression", 1, inner_lr=0.01, eval_inner_lr=0.01, eval_inner_steps=1)
    before = evaluate(learner, sampler, "test")
    train_steps(learner, sampler, 300)
    after = evaluate(learner, sampler, "test")
    assert before.metric == "mse"
    assert after.mean < 0.85 * before.mean
