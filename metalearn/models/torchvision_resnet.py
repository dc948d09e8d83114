"""torchvision's ResNet-18 / -34 / -50 as a feature extractor, with ImageNet weights from a file the user has."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from metalearn.errors import DataError
from metalearn.models.frames import frames_and_image, per_frame

# torchvision's ImageNet preprocessing, which its published weights expect of [0, 1] RGB images
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FEATURES = {18: 512, 34: 512, 50: 2048}


class TorchvisionResNet(nn.Module):
    """A ResNet (He et al. 2016) from torchvision without its classifier: the features are the last maps averaged
    over space. The few-shot video learners use it per frame (TRX and OTAM report ResNet-50 on ImageNet weights).

    Weights are never downloaded: `weights` names a state-dict file the user has (torchvision's own, e.g.
    resnet50-0676ba61.pth from its model zoo); without one the network starts from torchvision's random
    initialisation. Inputs in [0, 1] are normalised with ImageNet's mean and deviation inside the module; a
    grayscale input's first convolution sums the file's RGB filters.

    Args:
        input_shape: (C, H, W) of images or (T, C, H, W) of clips, C 1 or 3, from the data set.
        depth (int, 18): 18, 34 or 50.
        weights (str | None, None): a state-dict file of torchvision's resnet{depth}; None: random initialisation.

    Shapes: images [N, C, H, W] -> [N, out_features] (512 for depth 18 and 34, 2048 for 50); clips
    [N, T, C, H, W] -> [N, T, out_features].

    References:
        He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.
    """

    def __init__(self, input_shape: Sequence[int], depth: int = 18, weights: str | None = None) -> None:
        super().__init__()
        from torchvision.models import resnet  # imported here: only this backbone needs torchvision's models

        self.frames, (channels, _, _) = frames_and_image(input_shape, f"resnet{depth}")
        network = getattr(resnet, f"resnet{depth}")(weights=None)
        if weights is not None:
            _load_weights(network, Path(weights).expanduser(), depth)
        if channels != 3:
            rgb = network.conv1
            network.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
            if weights is not None and channels == 1:
                network.conv1.weight.data.copy_(rgb.weight.data.sum(1, keepdim=True))
        network.fc = nn.Identity()
        self.network = network
        mean = torch.tensor(IMAGENET_MEAN if channels == 3 else (sum(IMAGENET_MEAN) / 3,) * channels)
        std = torch.tensor(IMAGENET_STD if channels == 3 else (sum(IMAGENET_STD) / 3,) * channels)
        self.register_buffer("mean", mean.view(-1, 1, 1), persistent=False)
        self.register_buffer("std", std.view(-1, 1, 1), persistent=False)
        self.out_features = FEATURES[depth]
        self.feature_shape = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return per_frame(self._encode, x, self.frames)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.network((x - self.mean) / self.std)


def _load_weights(network: nn.Module, path: Path, depth: int) -> None:
    """Load a torchvision resnet{depth} state dict from `path`, or raise one DataError saying what is wrong."""
    if not path.is_file():
        raise DataError(
            f"model.weights={path} does not exist; give the path of torchvision's resnet{depth} ImageNet weights "
            "file you have (e.g. from ~/.cache/torch/hub/checkpoints/), or model.weights=null for random weights"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataError(f"model.weights={path} is not a readable PyTorch state dict ({type(exc).__name__})") from None
    try:
        network.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError):
        raise DataError(f"model.weights={path} is not a state dict of torchvision's resnet{depth}") from None
