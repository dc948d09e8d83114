"""torchvision's ResNet as a backbone: per-frame features on clips, weights loaded from a local file exactly (a
grayscale first convolution summing the RGB filters), and one clear error for a missing or foreign file."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import resnet18

from metalearn.errors import DataError
from metalearn.models.torchvision_resnet import TorchvisionResNet


def test_clips_give_per_frame_features_equal_to_the_frames_alone():
    torch.manual_seed(0)
    model = TorchvisionResNet((3, 3, 32, 32), depth=18).eval()
    clips = torch.rand(2, 3, 3, 32, 32)
    features = model(clips)
    assert features.shape == (2, 3, 512) and model.out_features == 512 and model.frames == 3
    assert torch.allclose(features[1, 2], model(clips[1, 2][None])[0], atol=1e-5)


def test_weights_from_a_file_are_loaded_and_gray_inputs_sum_the_rgb_filters(tmp_path):
    reference = resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    rgb = TorchvisionResNet((3, 16, 16), weights=str(path))
    assert torch.equal(rgb.network.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)
    gray = TorchvisionResNet((1, 16, 16), weights=str(path))
    assert torch.allclose(gray.network.conv1.weight, reference.conv1.weight.sum(1, keepdim=True))
    assert torch.equal(gray.network.layer1[0].bn1.running_var, reference.layer1[0].bn1.running_var)
    # ImageNet normalisation inside: a gray image equals the RGB image with three equal channels, up to the filters
    image = torch.rand(1, 1, 16, 16)
    normalised = (image - gray.mean) / gray.std
    assert torch.allclose(normalised, (image - 0.449) / 0.226, atol=1e-3)


def test_a_missing_or_foreign_weights_file_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="does not exist; give the path of torchvision's resnet18"):
        TorchvisionResNet((3, 16, 16), weights=str(tmp_path / "nonesuch.pth"))
    foreign = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(2)}, foreign)
    with pytest.raises(DataError, match="is not a state dict of torchvision's resnet18"):
        TorchvisionResNet((3, 16, 16), weights=str(foreign))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="is not a readable PyTorch state dict"):
        TorchvisionResNet((3, 16, 16), weights=str(garbage))
