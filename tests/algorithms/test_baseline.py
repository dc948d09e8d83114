"""Baseline and Baseline++: the heads against hand computations, the batched test-time fitting against a plain
per-episode implementation, and the pre-training sampler, which draws every training image once per epoch and
never an image of a validation or test class."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from metalearn.algorithms.baseline import FINETUNE_SGD, Baseline, cosine_scale, head_logits
from metalearn.data.class_store import ClassStore, SplitData
from metalearn.episode import Episode, EpisodeBatch, LabelledBatch
from metalearn.models.conv4 import Conv4
from metalearn.sampling.batches import BatchSampler
from metalearn.training.evaluator import evaluate
from tests.support import Identity, tiny_glyphs, train_steps


def test_heads_by_hand():
    features = torch.tensor([[3.0, 4.0]], dtype=torch.float64)
    weight = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    bias = torch.tensor([0.5, -1.0], dtype=torch.float64)
    # linear: (3 + 0.5, 8 - 1); cosine: scale * (3/5, 4/5)
    torch.testing.assert_close(
        head_logits(features, weight, bias, None), torch.tensor([[3.5, 7.0]], dtype=torch.float64)
    )
    expected = torch.tensor([[2 * 0.6, 2 * 0.8]], dtype=torch.float64)
    torch.testing.assert_close(head_logits(features, weight, None, 2.0), expected, rtol=1e-12, atol=0)
    assert (cosine_scale(64), cosine_scale(200), cosine_scale(4112)) == (2.0, 2.0, 10.0)


@pytest.mark.parametrize("head", ["linear", "cosine"])
def test_pretraining_loss_is_the_cross_entropy_over_training_classes(head):
    learner = Baseline(Identity(2), "classification", 5, train_classes=3, head=head).double()
    x, y = torch.tensor([[1.0, 2.0], [0.0, -1.0]], dtype=torch.float64), torch.tensor([2, 0])
    w = learner.classifier
    if head == "linear":
        logits = x @ w.weight.T + w.bias
    else:  # 3 classes: Chen et al.'s scale 2
        logits = 2.0 * F.normalize(x, dim=1) @ F.normalize(w.weight, dim=1).T
    out = learner.meta_loss(LabelledBatch(x, y))
    assert float(out.loss.detach()) == pytest.approx(float(F.cross_entropy(logits, y).detach()), rel=1e-12)


def fit_one_episode(support, support_y, query, n_way, epochs, draws, cosine):
    """The test-time fitting of one episode written plainly: nn.Linear, torch.optim.SGD, a loop over mini-batches
    of 4, with the initial head and the orders given (the batched version draws them for all episodes at once)."""
    weight, bias, orders = draws
    head = torch.nn.Linear(support.shape[1], n_way, bias=not cosine).double()
    with torch.no_grad():
        head.weight.copy_(weight)
        if not cosine:
            head.bias.copy_(bias)
    optimizer = torch.optim.SGD(head.parameters(), lr=0.01, **FINETUNE_SGD)

    def logits(x):
        return 2.0 * F.normalize(x, dim=1) @ F.normalize(head.weight, dim=1).T if cosine else head(x)

    for epoch in range(epochs):
        for start in range(0, len(support), 4):
            picked = orders[epoch][start : start + 4]
            optimizer.zero_grad()
            F.cross_entropy(logits(support[picked]), support_y[picked]).backward()
            optimizer.step()
    with torch.no_grad():
        return logits(query)


@pytest.mark.parametrize("cosine", [False, True])
def test_batched_fitting_equals_fitting_each_episode_alone(cosine):
    torch.manual_seed(0)
    b, n, k, q, d, epochs = 3, 3, 2, 4, 5, 7
    learner = Baseline(Identity(d), "classification", n, train_classes=10, head="cosine" if cosine else "linear")
    learner.finetune_epochs = epochs
    support_y = torch.arange(n).repeat_interleave(k)
    batch = EpisodeBatch(
        torch.randn(b, n * k, d, dtype=torch.float64),
        support_y.expand(b, -1),
        torch.randn(b, q, d, dtype=torch.float64),
        torch.zeros(b, q, dtype=torch.long),
        n_way=n,
    )
    batched = learner.double().predict_batch(batch)
    # the same draws as the learner's seeded generator: initial heads, then one order per epoch
    gen = torch.Generator().manual_seed(0)
    bound = 1 / math.sqrt(d)
    weight = (torch.rand(b, n, d, generator=gen) * 2 - 1) * bound
    bias = None if cosine else (torch.rand(b, n, generator=gen) * 2 - 1) * bound
    orders = [torch.rand(b, n * k, generator=gen).argsort(dim=1) for _ in range(epochs)]
    for i in range(b):
        draws = (weight[i], None if bias is None else bias[i], [o[i] for o in orders])
        alone = fit_one_episode(batch.support_x[i], support_y, batch.query_x[i], n, epochs, draws, cosine)
        torch.testing.assert_close(batched[i], alone, rtol=1e-10, atol=1e-12)


def numbered_split() -> SplitData:
    """Train 4 classes (sizes 3, 5, 2, 6), val and test 2 classes each; image i of the whole set has value i."""
    sizes = {"train": [3, 5, 2, 6], "val": [4, 4], "test": [4, 4]}
    stores, first = {}, 0
    for split, classes in sizes.items():
        total = sum(classes)
        values = torch.arange(first, first + total, dtype=torch.uint8).view(total, 1, 1, 1).expand(total, 1, 2, 2)
        stores[split] = ClassStore(
            values.contiguous(),
            torch.cumsum(torch.tensor([0] + classes), 0),
            [f"{split}{c}" for c in range(len(classes))],
        )
        first += total
    return SplitData(stores["train"], stores["val"], stores["test"], name="numbered")


def test_pretraining_draws_only_training_images_once_per_epoch_with_their_classes():
    sampler = BatchSampler(numbered_split(), batch_size=5, n_way=2, k_shot=1, q_query=1)
    drawn, labels = [], []
    for _ in range(16):  # 80 images: five epochs of the 16 training images
        batch = sampler.train_batch()
        drawn += (batch.x[:, 0, 0, 0] * 255).round().long().tolist()
        labels += batch.y.tolist()
    assert set(drawn) <= set(range(16)), "an image of a validation or test class was drawn"
    for epoch in range(5):
        assert sorted(drawn[16 * epoch : 16 * (epoch + 1)]) == list(range(16))  # each image once per epoch
    offsets = [0, 3, 8, 10, 16]
    assert all(offsets[label] <= image < offsets[label + 1] for image, label in zip(drawn, labels))
    assert sampler.num_classes == 4


def test_pretraining_stream_resumes_exactly():
    a = BatchSampler(numbered_split(), batch_size=3, n_way=2, k_shot=1, q_query=1, seed=1)
    for _ in range(4):
        a.train_batch()
    b = BatchSampler(numbered_split(), batch_size=3, n_way=2, k_shot=1, q_query=1, seed=7)
    b.load_state_dict(a.state_dict())
    for _ in range(9):  # across an epoch boundary
        assert torch.equal(a.train_batch().x, b.train_batch().x)


@pytest.mark.parametrize("head", ["linear", "cosine"])
def test_baseline_learns_glyphs(head):
    torch.manual_seed(0)
    glyphs = tiny_glyphs()
    sampler = BatchSampler(glyphs, batch_size=32, q_query=5, val_episodes=10, test_episodes=50)
    learner = Baseline(Conv4(glyphs.input_shape, 32), "classification", 5, train_classes=40, head=head)
    before = evaluate(learner, sampler, "test").mean
    losses = train_steps(learner, sampler, 80)
    after = evaluate(learner, sampler, "test").mean
    assert sum(losses[-10:]) < 0.8 * sum(losses[:10])
    assert after > 0.5 and after > before + 0.1, f"{head}: accuracy {before:.3f} -> {after:.3f}"


def test_fitting_does_not_touch_the_backbone():
    learner = Baseline(Conv4((1, 16, 16), 8, num_blocks=2), "classification", 2, train_classes=3).eval()
    state = {k: v.clone() for k, v in learner.state_dict().items()}
    episode = Episode(
        torch.rand(4, 1, 16, 16), torch.tensor([0, 1, 0, 1]), torch.rand(2, 1, 16, 16), torch.tensor([0, 1])
    )
    with torch.no_grad():
        learner.predict(episode)
    assert all(torch.equal(state[k], v) for k, v in learner.state_dict().items())
