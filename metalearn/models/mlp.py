"""A multi-layer perceptron; two hidden layers of 40 ReLU units is MAML's sinusoid network, two of 100 tanh units
its policies'."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn


class MLP(nn.Module):
    """Fully connected layers with ReLU or tanh; the features are the last hidden layer's activations.

    Args:
        input_shape: the shape of one input, from the data (flattened first): (1,) for sinusoid.
        hidden_sizes (list of int, [40, 40]): the widths of the hidden layers (Finn et al. 2017, section 5.1).
        activation (str, "relu"): "relu" or "tanh" (MAML's reinforcement-learning policies).

    Shapes: inputs [N, *input_shape] -> features [N, out_features], out_features = hidden_sizes[-1].
    """

    def __init__(
        self, input_shape: Sequence[int], hidden_sizes: Sequence[int] = (40, 40), activation: str = "relu"
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), nn.Tanh() if activation == "tanh" else nn.ReLU()]
            width = size
        self.layers = nn.Sequential(*layers)
        self.out_features = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
