"""Structured-config schemas, one dataclass per `_target_`.

Each schema gives the keys, their types and defaults; `check` rejects impossible values with a message
that names the key, the value and what is allowed. The schemas live in metalearn/config/groups/, one
module per group; a new component of metalearn adds its dataclass there and lists it in registry.py, whose
defaults Hydra's ConfigStore then serves to the component's YAML file. A user's own component needs no
entry: its keys are checked against its `config_schema` (a dataclass) if it has one, else its signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from metalearn.errors import ConfigError


def at_least(key: str, value: Any, low: float) -> None:
    if value < low:
        raise ConfigError(f"{key}={value} is invalid: must be at least {low}")


def at_most(key: str, value: Any, high: float, why: str = "") -> None:
    """Refuse values too large to mean anything here (they would try to allocate or run for ever)."""
    if value > high:
        raise ConfigError(f"{key}={value} is invalid: must be at most {high}" + (f" ({why})" if why else ""))


def seed_range(key: str, value: int) -> None:
    """A seed torch, numpy and Python all take: 0 <= seed < 2**32 (numpy's limit)."""
    if not 0 <= value < 2**32:
        raise ConfigError(f"{key}={value} is invalid: must be between 0 and {2**32 - 1}")


def positive(key: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{key}={value} is invalid: must be greater than 0")


def one_of(key: str, value: Any, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ConfigError(f"{key}={value!r} is invalid: must be one of {', '.join(options)}")


class Schema:
    """Base: `check(prefix)` validates values once types and keys are known to be right."""

    def check(self, prefix: str) -> None:  # noqa: D401 - overridden where values have limits
        return None


@dataclass
class _Flag:
    value: bool = False


def parse_bool(value: Any, key: str = "value") -> bool:
    """A boolean as the schemas read one (True, "true", "yes", "on", 1, ...); ConfigError for anything else."""
    try:
        return bool(OmegaConf.merge(OmegaConf.structured(_Flag), {"value": value}).value)
    except ValidationError:
        raise ConfigError(f"{key}={value!r} is invalid: expected bool") from None
