"""Backbone shapes (the feature maps the relation module reads) and DropBlock's dropping and rescaling."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from metalearn.errors import ConfigError
from metalearn.models.conv4 import Conv4
from metalearn.models.resnet12 import DropBlock, ResNet12


@pytest.mark.parametrize(
    "shape, pool_blocks, maps",
    [((1, 28, 28), None, (64, 1, 1)), ((1, 28, 28), 2, (64, 7, 7)), ((3, 84, 84), 2, (64, 21, 21))],
)
def test_conv4_feature_maps(shape, pool_blocks, maps):
    net = Conv4(shape, pool_blocks=pool_blocks)
    assert net.feature_shape == maps and net.out_features == maps[0] * maps[1] * maps[2]
    assert net(torch.rand(2, *shape)).shape == (2, net.out_features)


def test_strided_conv4_is_mamls_omniglot_network():
    net = Conv4((1, 28, 28), downsample="stride")  # 28 -> 14 -> 7 -> 4 -> 2: sides rounded up, no pooling
    assert net.feature_shape == (64, 2, 2) and net(torch.rand(3, 1, 28, 28)).shape == (3, 256)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in net.modules())
    assert [m.stride for m in net.modules() if isinstance(m, torch.nn.Conv2d)] == [(2, 2)] * 4
    averaged = Conv4((1, 28, 28), downsample="stride", average_pool=True).eval()
    averaged.load_state_dict(net.state_dict())
    x = torch.rand(3, 1, 28, 28)
    maps = net.eval()(x).view(3, 64, 4)
    assert averaged.feature_shape is None and averaged.out_features == 64
    torch.testing.assert_close(averaged(x), maps.mean(-1))
    assert Conv4((1, 5, 5), downsample="stride").feature_shape == (64, 1, 1)  # too small to pool 4 times


def test_resnet12_shapes():
    net = ResNet12((3, 84, 84), widths=(8, 8, 16, 16))
    assert net.feature_shape == (16, 5, 5)
    assert net(torch.rand(2, 3, 84, 84)).shape == (2, 16 * 25)
    pooled = ResNet12((3, 32, 32), widths=(8, 8, 16, 16), average_pool=True)
    assert pooled.feature_shape is None and pooled(torch.rand(2, 3, 32, 32)).shape == (2, 16)
    with pytest.raises(ConfigError, match="needs at least 16x16"):
        ResNet12((1, 8, 8))


def test_dropblock_drops_square_blocks_and_keeps_the_expected_activation():
    torch.manual_seed(0)
    drop = DropBlock(drop_rate=0.1, block_size=3)
    x = torch.ones(64, 8, 20, 20)
    drop.eval()
    assert torch.equal(drop(x), x)  # the identity in evaluation
    drop.train()
    y = drop(x)
    kept = y > 0
    # the kept units are rescaled by (all units / kept units), so the mean activation stays 1
    assert float(y.mean()) == pytest.approx(1.0, rel=1e-5)
    assert torch.allclose(y[kept], torch.full_like(y[kept], x.numel() / float(kept.sum())))
    # about drop_rate of the units are dropped (blocks overlap, so a little fewer)
    assert 0.07 < 1 - float(kept.float().mean()) < 0.1
    # every dropped unit lies in a dropped 3x3 square: a unit dropped alone would have no dropped neighbour
    dropped = (~kept).float()
    neighbours = torch.nn.functional.avg_pool2d(dropped, 3, stride=1, padding=1) * 9
    assert torch.all(neighbours[~kept] >= 3)


def _usual_order(net: torch.nn.Module) -> torch.nn.Module:
    """A copy of `net` whose blocks activate before pooling, the order the papers write."""
    usual = copy.deepcopy(net)
    for module in usual.modules():
        if isinstance(module, torch.nn.Sequential):
            layers = list(module)
            for i in range(len(layers) - 1):
                if isinstance(layers[i], torch.nn.MaxPool2d) and isinstance(layers[i + 1], (nn.ReLU, nn.LeakyReLU)):
                    module[i], module[i + 1] = layers[i + 1], layers[i]
    return usual


def _value_gradients_and_second_order(net: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The features, the gradient of a loss on them, and the gradient of that gradient's squared norm (MAML's
    second-order term), all with respect to the parameters."""
    params = [p for p in net.parameters() if p.requires_grad]
    features = net(x)
    loss = (features * torch.linspace(-1, 1, features.shape[-1])).sum()
    grads = torch.autograd.grad(loss, params, create_graph=True)
    second = torch.autograd.grad(sum(g.pow(2).sum() for g in grads), params)
    return [features.detach(), *(g.detach() for g in grads), *second]


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: Conv4((1, 28, 28)), (1, 28, 28)),
        (lambda: Conv4((1, 28, 28), memory_format="contiguous"), (1, 28, 28)),
        (lambda: ResNet12((3, 16, 16), widths=[8, 8, 8, 8]), (3, 16, 16)),
    ],
    ids=["conv4", "conv4_contiguous", "resnet12"],
)
def test_pooling_before_the_activation_changes_no_result(make, shape):
    """The blocks pool before their ReLU / LeakyReLU (cheaper): features and gradients equal those of the usual order
    bit for bit, also where whole windows are negative or tied (the blank image); second-order gradients are the
    same up to rounding (the order of a channels-last reduction may change)."""
    torch.manual_seed(0)
    net = make()
    usual = _usual_order(net)
    assert [type(m) for m in usual.modules()] != [type(m) for m in net.modules()]
    x = torch.rand(6, *shape)
    x[0] = 0  # a blank image: windows of equal values
    ours, theirs = _value_gradients_and_second_order(net, x), _value_gradients_and_second_order(usual, x)
    first = 1 + len([p for p in net.parameters() if p.requires_grad])
    for a, b in zip(ours[:first], theirs[:first], strict=True):
        assert torch.equal(a, b)
    scale = max(float(b.abs().max()) for b in theirs[first:])
    for a, b in zip(ours[first:], theirs[first:], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6 * scale)
