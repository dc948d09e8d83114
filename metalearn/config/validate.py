"""Validate a composed config against the schemas before anything is built or trained."""

from __future__ import annotations

import dataclasses
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from metalearn.config.registry import FIXED_SCHEMAS, SCHEMAS, TopLevel
from metalearn.config.schema import Schema
from metalearn.errors import ConfigError


def _field_types(schema: type[Schema]) -> dict[str, str]:
    return {f.name: str(f.type).replace("typing.", "") for f in dataclasses.fields(schema)}  # type: ignore[arg-type]


def _key(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _checked(schema: type[Schema], node: dict[str, Any], prefix: str) -> Schema:
    """Merge `node` into the schema (types, unknown keys), then check values."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), node)
    except ConfigKeyError as exc:
        key = getattr(exc, "key", None) or str(exc)
        allowed = ", ".join(k for k in _field_types(schema) if k != "_target_")
        where = prefix or "the top level"
        raise ConfigError(f"{_key(prefix, key)} is not a known key; {where} accepts: {allowed}") from None
    except ValidationError as exc:
        key = str(getattr(exc, "key", None) or getattr(exc, "full_key", ""))
        value = node.get(key, "?") if isinstance(node, dict) else "?"
        expected = _field_types(schema).get(key, "another type")
        raise ConfigError(f"{_key(prefix, key)}={value!r} is invalid: expected {expected}") from None
    instance: Schema = OmegaConf.to_object(merged)  # type: ignore[assignment]
    instance.check(prefix)
    return instance


def validate_config(cfg: DictConfig, skip: tuple[str, ...] = ()) -> None:
    """Raise ConfigError for the first wrong type, unknown key, unknown target or impossible value.

    `skip`: groups not to check yet (in mode=eval they come from the checkpoint and are checked after).
    """
    try:
        container = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"the config cannot be resolved: {exc}".splitlines()[0]) from None
    assert isinstance(container, dict)
    groups = set(SCHEMAS) | set(FIXED_SCHEMAS)
    top_keys = {f.name for f in dataclasses.fields(TopLevel)}
    for key in container:
        if key not in groups | top_keys:
            raise ConfigError(f"{key} is not a known key; the config has: {', '.join(sorted(groups | top_keys))}")
    for group, schemas in SCHEMAS.items():
        if group in skip:
            continue
        node = container.get(group)
        if not isinstance(node, dict):
            raise ConfigError(f"the config has no {group}; choose one with {group}=NAME (see metalearn --help)")
        target = node.get("_target_")
        if target not in schemas:
            raise ConfigError(
                f"{group}._target_={target!r} is not a known {group}; known targets: {', '.join(schemas)}"
            )
        _checked(schemas[target], node, group)
    for group, schema in FIXED_SCHEMAS.items():
        _checked(schema, container.get(group) or {}, group)
    if "algorithm" not in skip:
        _check_combinations(container)
    top = _checked(TopLevel, {k: container[k] for k in top_keys if k in container}, "")
    if top.mode == "eval" and not top.checkpoint:  # type: ignore[attr-defined]
        raise ConfigError(
            "mode=eval needs a checkpoint: add checkpoint=PATH (for example outputs/DATE/TIME/checkpoints/best.pt)"
        )


# Trainer settings that only act through the trainer's optimiser, which Reptile's outer update replaces.
_OPTIMISER_ONLY = {"optimizer": "adam", "weight_decay": 0.0, "grad_clip": None, "scheduler": "none"}


def _check_combinations(container: dict[str, Any]) -> None:
    """Refuse settings that the chosen components would silently ignore."""
    if str(container["algorithm"].get("_target_", "")).endswith(".Reptile"):
        for key, default in _OPTIMISER_ONLY.items():
            value = container["trainer"].get(key, default)
            if value != default:
                raise ConfigError(
                    f"trainer.{key}={value!r} has no effect with algorithm=reptile, whose outer update "
                    f"theta += epsilon * mean(phi - theta) replaces the trainer's optimiser; use algorithm.outer_lr "
                    f"and algorithm.outer_lr_final, or remove trainer.{key}"
                )
