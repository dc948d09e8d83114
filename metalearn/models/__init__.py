"""Backbones. Each maps inputs to a flat feature vector and reports `out_features`."""

from metalearn.models.conv4 import Conv4
from metalearn.models.mlp import MLP

__all__ = ["Conv4", "MLP"]
