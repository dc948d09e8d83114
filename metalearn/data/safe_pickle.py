"""Reading data-set pickles without running code from them.

A pickle can name any importable callable and have it called while loading. Data-set pickles
(mini-ImageNet caches, CIFAR-100's python files) only need numpy arrays and plain Python values, so
the unpickler here resolves just those names and refuses everything else with a DataError.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from metalearn.errors import DataError

# The callables numpy arrays, dtypes and scalars pickle themselves with, under the module names
# numpy 1 (numpy.core) and numpy 2 (numpy._core) write.
_reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]
_scalar = np.float64(0).__reduce__()[0]
_frombuffer = np.zeros(1).__reduce_ex__(5)[0]  # protocol 5 rebuilds arrays from raw buffers
_NUMPY = {
    "_reconstruct": _reconstruct,
    "scalar": _scalar,
    "_frombuffer": _frombuffer,
    "ndarray": np.ndarray,
    "dtype": np.dtype,
}
_NUMPY_MODULES = (
    "numpy",
    "numpy.core.multiarray",
    "numpy._core.multiarray",
    "numpy.core.numeric",
    "numpy._core.numeric",
)
_BUILTINS = {
    t.__name__: t for t in (dict, list, tuple, set, frozenset, str, bytes, bytearray, int, float, complex, bool)
}


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """What protocol-2 pickles call (as _codecs.encode) to rebuild bytes; only this encoding is allowed."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"it asks to encode with {encoding!r}, which a data file never needs")
    return text.encode("latin1")


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module in _NUMPY_MODULES and name in _NUMPY:
            return _NUMPY[name]
        if module == "numpy.dtypes" and name.endswith("DType"):
            return getattr(np.dtypes, name)  # numpy 2 pickles dtype classes by name
        if module in ("builtins", "__builtin__") and name in _BUILTINS:
            return _BUILTINS[name]
        if module == "_codecs" and name == "encode":
            return _latin1_encode
        if module == "collections" and name == "OrderedDict":
            from collections import OrderedDict

            return OrderedDict
        raise pickle.UnpicklingError(f"it asks to load {module}.{name}, which a data file never needs")


def safe_load(path: Path) -> Any:
    """Unpickle a data file allowing only numpy arrays and plain values; any failure is a DataError naming the file."""
    try:
        with open(path, "rb") as handle:
            return _RestrictedUnpickler(handle, encoding="latin1").load()
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        MemoryError,
        OSError,
    ) as exc:
        raise DataError(
            f"cannot read {path}: {exc}; the file is damaged, truncated or not the expected pickle"
        ) from None
