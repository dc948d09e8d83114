"""Episode sampler properties: shapes, labels, disjointness, seeding, fixed evaluation episodes."""

from __future__ import annotations

import pytest
import torch

from metalearn.data.class_store import ClassStore, SplitData
from metalearn.data.sinusoid import SinusoidTasks
from metalearn.errors import ConfigError
from metalearn.sampling.sampler import EpisodeSampler, draw_class_indices
from tests.support import tiny_glyphs


@pytest.fixture(scope="module")
def glyphs() -> SplitData:
    return tiny_glyphs()


def numbered_store(sizes: list[int]) -> ClassStore:
    """A store whose image i is filled with the value i (mod 256), so images identify themselves."""
    total = sum(sizes)
    images = (torch.arange(total) % 256).to(torch.uint8).view(total, 1, 1, 1).expand(total, 1, 2, 2).contiguous()
    return ClassStore(images, torch.cumsum(torch.tensor([0] + sizes), 0), [f"c{i}" for i in range(len(sizes))])


def test_shapes_and_labels(glyphs):
    sampler = EpisodeSampler(glyphs, n_way=5, k_shot=3, q_query=4, tasks_per_batch=6)
    batch = sampler.train_batch()
    assert batch.support_x.shape == (6, 15, 1, 28, 28)
    assert batch.query_x.shape == (6, 20, 1, 28, 28)
    assert batch.support_x.dtype == torch.float32
    assert 0.0 <= float(batch.support_x.min()) and float(batch.support_x.max()) <= 1.0
    for y, per_class in ((batch.support_y, 3), (batch.query_y, 4)):
        assert y.dtype == torch.long
        assert torch.equal(torch.bincount(y[0], minlength=5), torch.full((5,), per_class))
        assert int(y.min()) == 0 and int(y.max()) == 4


def test_support_and_query_never_share_an_image_and_classes_are_distinct():
    store = numbered_store([10] * 12)
    gen = torch.Generator().manual_seed(1)
    idx = draw_class_indices(store, n_tasks=200, n_way=5, n_per_class=7, gen=gen)  # [T, n, k+q]
    flat = idx.reshape(200, -1)
    assert all(len(set(row.tolist())) == row.numel() for row in flat)  # no image twice in an episode
    classes = torch.bucketize(idx, store.class_offsets[1:], right=True)
    assert torch.all(classes == classes[..., :1])  # each row of a class holds that class's images
    assert all(len(set(row[:, 0].tolist())) == 5 for row in classes)  # n distinct classes


def test_unequal_class_sizes_respect_class_bounds():
    store = numbered_store([3, 8, 5, 20])
    idx = draw_class_indices(store, 500, 2, 3, torch.Generator().manual_seed(0))
    offsets = store.class_offsets
    classes = torch.bucketize(idx[..., 0].contiguous(), offsets[1:], right=True)
    assert torch.all(idx >= offsets[classes][..., None]) and torch.all(idx < offsets[classes + 1][..., None])
    # class 0 has exactly 3 images, so when drawn it must contribute all three
    drawn = idx[classes == 0]
    assert drawn.numel() and all(sorted(row.tolist()) == [0, 1, 2] for row in drawn)


def test_classes_take_labels_in_random_order():
    store = numbered_store([4] * 6)
    idx = draw_class_indices(store, 600, 3, 2, torch.Generator().manual_seed(0))
    label0_class = torch.bucketize(idx[:, 0, 0].contiguous(), store.class_offsets[1:], right=True)
    counts = torch.bincount(label0_class, minlength=6)
    assert int(counts.min()) > 60  # every class takes label 0 about 100 times in 600 episodes


def test_seeded_determinism(glyphs):
    a = EpisodeSampler(glyphs, seed=3).train_batch()
    b = EpisodeSampler(glyphs, seed=3).train_batch()
    c = EpisodeSampler(glyphs, seed=4).train_batch()
    assert torch.equal(a.support_x, b.support_x) and torch.equal(a.query_x, b.query_x)
    assert not torch.equal(a.support_x, c.support_x)


def test_eval_episodes_are_fixed_regardless_of_run_seed_and_chunking(glyphs):
    a = EpisodeSampler(glyphs, seed=0, test_episodes=30, eval_batch_size=7)
    b = EpisodeSampler(glyphs, seed=99, test_episodes=30, eval_batch_size=30)
    b.train_batch()  # drawing training episodes must not move the evaluation set
    xa = torch.cat([e.query_x for e in a.eval_batches("test")])
    xb = torch.cat([e.query_x for e in b.eval_batches("test")])
    assert xa.shape[0] == 30 and torch.equal(xa, xb)
    assert torch.equal(xa, torch.cat([e.query_x for e in a.eval_batches("test")]))  # same on every call
    val = torch.cat([e.query_x for e in a.eval_batches("val")])
    assert not torch.equal(val[:5], xa[:5])


def test_splits_hold_disjoint_classes(glyphs):
    images = {split: glyphs.split(split).images for split in ("train", "val", "test")}
    names = [set(glyphs.split(s).class_names) for s in ("train", "val", "test")]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    # no test image appears in training (the data are different characters, not relabelled copies)
    train_hashes = {hash(bytes(x.numpy())) for x in images["train"]}
    assert not any(hash(bytes(x.numpy())) in train_hashes for x in images["test"])


def test_sizes_the_data_cannot_supply_are_rejected(glyphs):
    with pytest.raises(ConfigError, match=r"sampler.n_way=11 is too large.*10 classes"):
        EpisodeSampler(glyphs, n_way=11)
    with pytest.raises(ConfigError, match=r"k_shot \+ sampler.q_query = 6 \+ 15 .* 20 images"):
        EpisodeSampler(glyphs, k_shot=6, q_query=15)


def test_sinusoid_tasks():
    sampler = EpisodeSampler(SinusoidTasks(), k_shot=10, q_query=7, tasks_per_batch=4, test_episodes=5)
    batch = sampler.train_batch()
    assert batch.support_x.shape == (4, 10, 1) and batch.query_y.shape == (4, 7, 1)
    assert float(batch.support_x.abs().max()) <= 5.0 and float(batch.support_y.abs().max()) <= 5.0
    fixed = [b.query_y for b in sampler.eval_batches("test")]
    assert torch.equal(torch.cat(fixed), torch.cat([b.query_y for b in sampler.eval_batches("test")]))


def test_training_episodes_may_have_their_own_shape(glyphs):
    """sampler.train_n_way / train_k_shot / train_q_query shape the training episodes only; every episode says its
    ways, so metric learners score 20-way test episodes after 60-way training."""
    sampler = EpisodeSampler(
        glyphs, n_way=5, k_shot=1, q_query=2, train_n_way=12, train_k_shot=3, train_q_query=4, val_episodes=3
    )
    train = sampler.train_batch()
    assert (train.n_way, train.support_x.shape[1], train.query_x.shape[1]) == (12, 36, 48)
    assert torch.equal(train.support_y[0], torch.arange(12).repeat_interleave(3))
    assert torch.equal(train.query_y[0], torch.arange(12).repeat_interleave(4))
    val = next(sampler.eval_batches("val"))
    assert (val.n_way, val.support_x.shape[1], val.query_x.shape[1]) == (5, 5, 10)
    assert val[0].n_way == 5 and val.to(torch.device("cpu")).n_way == 5
    # unset keys follow the test shape
    same = EpisodeSampler(glyphs, n_way=4, k_shot=2, q_query=3, train_k_shot=5)
    assert (same.train_shape.n_way, same.train_shape.k_shot, same.train_shape.q_query) == (4, 5, 3)


def test_fixed_episodes_do_not_depend_on_the_training_shape(glyphs):
    plain = EpisodeSampler(glyphs, n_way=5, val_episodes=4)
    wide = EpisodeSampler(glyphs, n_way=5, val_episodes=4, train_n_way=20, train_q_query=5)
    assert torch.equal(next(plain.eval_batches("val")).query_x, next(wide.eval_batches("val")).query_x)


def test_training_shape_too_large_names_the_training_key(glyphs):
    with pytest.raises(ConfigError, match=r"sampler.train_n_way=41 is too large: the train split of .* has 40"):
        EpisodeSampler(glyphs, train_n_way=41)
    with pytest.raises(ConfigError, match=r"sampler.train_k_shot \+ sampler.train_q_query = 15 \+ 15 is too large"):
        EpisodeSampler(glyphs, train_k_shot=15)
