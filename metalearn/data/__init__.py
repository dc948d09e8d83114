"""Data sets as in-memory tensors: class stores for classification, task sources for regression."""

from metalearn.data.class_store import ClassStore, SplitData

__all__ = ["ClassStore", "SplitData"]
