"""Build run components from config nodes with Hydra's instantiate."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate


def build(node: Any, **kwargs: Any) -> Any:
    """Instantiate `node`'s `_target_` with its keys plus runtime objects `kwargs`.

    The runtime objects (data, backbones) go to the partial, not through instantiate, which would
    turn dataclasses into configs; constructor errors (our ConfigError, DataError) surface unwrapped.
    """
    return instantiate(node, _partial_=True, _convert_="all")(**kwargs)
