"""Natural-image augmentation: seeded, shape- and range-preserving, exact in its limits, training only."""

from __future__ import annotations

import pytest
import torch

from metalearn.config.groups.image_data import CifarFSConfig
from metalearn.data.augment import NaturalAugment, colour_jitter, make_transform
from metalearn.data.class_store import ClassStore, SplitData
from metalearn.errors import ConfigError
from metalearn.sampling.sampler import EpisodeSampler


def _images(*shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(0))


def test_seeded_changes_images_keeps_shape_and_range() -> None:
    augment = make_transform("standard")
    x = _images(2, 5, 3, 84, 84)
    a = augment(x, torch.Generator().manual_seed(1))
    b = augment(x, torch.Generator().manual_seed(1))
    c = augment(x, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert (a - x).abs().mean() > 0.05
    # every image gets its own parameters: identical inputs come out different
    same = x[:1, :1].expand(1, 8, 3, 84, 84)
    out = augment(same, torch.Generator().manual_seed(3))
    assert not torch.equal(out[0, 0], out[0, 1])
    gray = augment(_images(4, 1, 28, 28), torch.Generator().manual_seed(0))
    assert gray.shape == (4, 1, 28, 28)


def test_limits_are_exact_identity_and_mirror() -> None:
    x = _images(6, 3, 10, 12)
    gen = torch.Generator().manual_seed(0)
    identity = NaturalAugment(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip=0.0, jitter=0.0)
    torch.testing.assert_close(identity(x, gen), x, atol=1e-5, rtol=0)
    mirror = NaturalAugment(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip=1.0, jitter=0.0)
    torch.testing.assert_close(mirror(x, gen), x.flip(-1), atol=1e-5, rtol=0)
    # a quarter-area square crop shows half the side, zoomed 2x: a ramp's slope per pixel halves
    zoom = NaturalAugment(crop_scale=(0.25, 0.25), crop_ratio=(1.0, 1.0), flip=0.0, jitter=0.0)
    ramp = torch.linspace(0, 1, 16).expand(4, 1, 16, 16).contiguous()
    steps = zoom(ramp, gen).diff(dim=-1)[..., 1:-1]  # the outermost samples may touch the clamped border
    torch.testing.assert_close(steps, torch.full_like(steps, 1 / 15 / 2), atol=1e-5, rtol=0)


def test_colour_jitter_by_hand() -> None:
    """With strength s the factors are 1 - s + 2s·u; one image, u drawn from the same generator."""
    x = _images(1, 3, 4, 4) * 0.5
    gen = torch.Generator().manual_seed(5)
    u = torch.rand(3, generator=torch.Generator().manual_seed(5))
    b, c, s = (0.8 + 0.4 * u).tolist()
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    y = (x * b).clamp(0, 1)
    m = (y * luma).sum(1, keepdim=True).mean()
    y = ((y - m) * c + m).clamp(0, 1)
    g = (y * luma).sum(1, keepdim=True)
    y = ((y - g) * s + g).clamp(0, 1)
    torch.testing.assert_close(colour_jitter(x, 0.2, gen), y)


def test_bad_settings_are_config_errors() -> None:
    assert make_transform("none") is None
    with pytest.raises(ConfigError, match="dataset.augment='affine' is invalid"):
        CifarFSConfig(augment="affine").check("dataset")
    with pytest.raises(ConfigError, match=r"dataset\.augment_flip=2 is invalid"):
        CifarFSConfig(augment="standard", augment_flip=2).check("dataset")


def _data(transform: object) -> SplitData:
    gen = torch.Generator().manual_seed(0)
    store = ClassStore(
        torch.randint(0, 256, (5 * 6, 3, 16, 16), generator=gen, dtype=torch.uint8),
        torch.arange(6) * 6,
        [f"c{i}" for i in range(5)],
    )
    return SplitData(store, store, store, name="tiny", train_transform=transform)  # type: ignore[arg-type]


def test_sampler_augments_training_batches_only() -> None:
    kwargs = dict(n_way=3, k_shot=1, q_query=2, tasks_per_batch=2, val_episodes=4, test_episodes=4, seed=7)
    plain = EpisodeSampler(_data(None), **kwargs)
    augmented = EpisodeSampler(_data(make_transform("standard")), **kwargs)
    again = EpisodeSampler(_data(make_transform("standard")), **kwargs)
    p, a, r = plain.train_batch(), augmented.train_batch(), again.train_batch()
    assert torch.equal(p.support_y, a.support_y) and torch.equal(p.query_y, a.query_y)
    assert not torch.equal(p.support_x, a.support_x) and not torch.equal(p.query_x, a.query_x)
    assert torch.equal(a.support_x, r.support_x) and torch.equal(a.query_x, r.query_x)  # seeded
    for split in ("val", "test"):
        for x, y in zip(plain.eval_batches(split), augmented.eval_batches(split)):
            assert torch.equal(x.support_x, y.support_x) and torch.equal(x.query_x, y.query_x)
