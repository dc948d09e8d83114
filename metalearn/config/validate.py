"""Validate a composed config against the schemas before anything is built or trained."""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from metalearn.config.registry import ABSENT_MEANS, FIXED_SCHEMAS, RUNTIME_ARGUMENTS, SCHEMAS, TopLevel, schema_defaults
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
    _require_finite(instance, prefix)
    check = getattr(instance, "check", None)  # a user's schema may be a plain dataclass
    if callable(check):
        check(prefix)
    return instance


def _require_finite(instance: Any, prefix: str) -> None:
    """Every float key (and every float in a list key) is a finite number: NaN and infinity pass range checks
    such as `value < low` silently, so they are refused here, before any check of the schema's own."""
    for f in dataclasses.fields(instance):
        value = getattr(instance, f.name)
        if any(isinstance(v, float) and not math.isfinite(v) for v in (value if isinstance(value, list) else [value])):
            raise ConfigError(f"{_key(prefix, f.name)}={value} is invalid: must be a finite number")


def _locate(group: str, target: Any, known: dict[str, type[Schema]]) -> Any:
    """The object a `_target_` outside metalearn's registry names (a user's own model or algorithm)."""
    from hydra.utils import get_object

    try:
        return get_object(str(target))
    except Exception as exc:  # ImportError, AttributeError, ValueError: all mean "cannot be found"
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError(
            f"{group}._target_={target!r} cannot be imported ({reason}); give an importable class or function, "
            f"for example one of: {', '.join(known)}"
        ) from None


def _check_signature(group: str, target: str, obj: Any, node: dict[str, Any]) -> None:
    """Keys of a target without a schema: each must be a parameter, and every required parameter given."""
    try:
        parameters = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return  # no signature to check against (a builtin): the constructor reports what it refuses
    runtime = RUNTIME_ARGUMENTS.get(group, ())
    keys = [k for k in node if k != "_target_"]
    named = {n: p for n, p in parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    if not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        for key in keys:
            if key not in named or key in runtime:
                allowed = ", ".join(n for n in named if n not in runtime) or "no keys"
                raise ConfigError(f"{group}.{key} is not a parameter of {target}; it accepts: {allowed}")
    for name, p in named.items():
        if p.default is p.empty and name not in keys and name not in runtime:
            raise ConfigError(f"{group}.{name} is required by {target}: add {group}.{name}=VALUE to its config")
    missing = [
        name for name in runtime if name not in named and not any(p.kind == p.VAR_KEYWORD for p in parameters.values())
    ]
    if missing:
        raise ConfigError(
            f"{group}._target_={target} must accept {', '.join(missing)} (metalearn passes them when it builds "
            f"the {group})"
        )


def _check_target(group: str, node: dict[str, Any], schemas: dict[str, type[Schema]]) -> dict[str, Any]:
    """Validate a node against its target's schema: metalearn's own, the target's `config_schema`, or its signature.
    Returns the node with its values converted to the schema's types (as it was, for a signature)."""
    target = node.get("_target_")
    if target in schemas:
        return dataclasses.asdict(_checked(schemas[target], node, group))
    if not isinstance(target, str) or not target:
        raise ConfigError(f"{group}._target_={target!r} is not a known {group}; known targets: {', '.join(schemas)}")
    obj = _locate(group, target, schemas)
    schema = getattr(obj, "config_schema", None)
    if isinstance(schema, type) and dataclasses.is_dataclass(schema):
        own = {k: v for k, v in node.items() if k != "_target_" or "_target_" in _field_types(schema)}
        return {"_target_": target, **dataclasses.asdict(_checked(schema, own, group))}
    _check_signature(group, target, obj, node)
    return node


def validate_config(cfg: DictConfig) -> DictConfig:
    """Check the whole config; raise ConfigError for the first wrong type, unknown key, unknown target or
    impossible value. Returns the config resolved and with every value converted to its schema's type
    (`sampler.n_way='5'` -> 5, `trainer.progress='false'` -> False): the values checked are the values run."""
    try:
        container = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"the config cannot be resolved: {exc}".splitlines()[0]) from None
    assert isinstance(container, dict)
    groups = set(SCHEMAS) | set(FIXED_SCHEMAS)
    top_keys = [f.name for f in dataclasses.fields(TopLevel)]
    for key in container:
        if key not in groups | set(top_keys):
            raise ConfigError(f"{key} is not a known key; the config has: {', '.join(sorted(groups | set(top_keys)))}")
    # the top level first: `seed=1e3` is reported as seed, not as the sampler.seed that interpolates it
    top = dataclasses.asdict(_checked(TopLevel, {k: container[k] for k in top_keys if k in container}, ""))
    typed: dict[str, Any] = {}
    for group, schemas in SCHEMAS.items():
        node = container.get(group)
        if node is None and group in ABSENT_MEANS:
            node = schema_defaults(ABSENT_MEANS[group])
        if not isinstance(node, dict):
            raise ConfigError(f"the config has no {group}; choose one with {group}=NAME (see metalearn --help)")
        typed[group] = _check_target(group, node, schemas)
    for group, schema in FIXED_SCHEMAS.items():
        typed[group] = dataclasses.asdict(_checked(schema, container.get(group) or {}, group))
    _check_combinations(typed)
    if top["mode"] == "eval" and not top["checkpoint"]:
        raise ConfigError(
            "mode=eval needs a checkpoint: add checkpoint=PATH (for example outputs/DATE/TIME/checkpoints/best.pt)"
        )
    checked = {key: typed.get(key, top.get(key, value)) for key, value in container.items()}
    checked.update({group: typed[group] for group in ABSENT_MEANS if group not in checked})
    return OmegaConf.create(checked)  # type: ignore[return-value]


# Trainer settings that only act through the trainer's optimiser, which Reptile's and MAML-TRPO's outer updates replace.
_OPTIMISER_ONLY = {"optimizer": "adam", "weight_decay": 0.0, "grad_clip": None, "scheduler": "none", "momentum": 0.0}
# Those algorithms (by their target's class): the option name and what replaces the optimiser, for the message.
_OWN_OUTER_UPDATE = {
    "Reptile": (
        "reptile",
        "outer update theta += epsilon * mean(phi - theta)",
        "algorithm.outer_lr and algorithm.outer_lr_final",
    ),
    "MAMLTRPO": ("maml_trpo", "TRPO step", "algorithm.max_kl"),
}


def _check_combinations(container: dict[str, Any]) -> None:
    """Refuse settings that the chosen components would silently ignore, and components that cannot work together."""
    baseline = str(container["algorithm"].get("_target_", "")).endswith(".Baseline")
    batches = str(container["sampler"].get("_target_", "")).endswith(".BatchSampler")
    if baseline and not batches:
        raise ConfigError(
            "algorithm=baseline pre-trains on mini-batches of the training images, not episodes: add sampler=batches"
        )
    if batches and not baseline:
        raise ConfigError(
            "sampler=batches draws mini-batches for supervised pre-training (algorithm=baseline or baseline++); "
            "episodic learners need sampler=episodic"
        )
    _check_reinforcement(container)
    own = _OWN_OUTER_UPDATE.get(str(container["algorithm"].get("_target_", "")).rsplit(".", 1)[-1])
    if own is not None:
        option, update, instead = own
        for key, default in _OPTIMISER_ONLY.items():
            value = container["trainer"].get(key, default)
            if value != default:
                raise ConfigError(
                    f"trainer.{key}={value!r} has no effect with algorithm={option}, whose {update} replaces the "
                    f"trainer's optimiser; use {instead}, or remove trainer.{key}"
                )


def _reinforcement(container: dict[str, Any], group: str) -> bool:
    """Whether the group's choice is of reinforcement learning (its schema says so)."""
    schema = SCHEMAS[group].get(str(container[group].get("_target_", "")))
    return bool(getattr(schema, "REINFORCEMENT", False))


def _check_reinforcement(container: dict[str, Any]) -> None:
    """A reinforcement-learning task family goes with the task sampler, a policy network and an RL learner, and
    they with it."""
    family = _reinforcement(container, "dataset")
    fix = "or use experiment=maml_trpo_navigation2d, which sets them all"
    if family and not _reinforcement(container, "sampler"):
        raise ConfigError(
            "the dataset is a reinforcement-learning task family: it needs sampler=tasks, model=policy_mlp and "
            f"algorithm=maml_trpo ({fix})"
        )
    if family and not _reinforcement(container, "algorithm"):
        raise ConfigError(
            "the dataset is a reinforcement-learning task family: it needs a reinforcement-learning algorithm, "
            f"algorithm=maml_trpo or maml_ppo ({fix})"
        )
    if family and not str(container["model"].get("_target_", "")).endswith(".MLP"):
        raise ConfigError(
            "the dataset is a reinforcement-learning task family, whose observations are vectors: it needs "
            f"model=policy_mlp (MAML's 100-100 tanh policy) or model=mlp ({fix})"
        )
    if not family and _reinforcement(container, "sampler"):
        raise ConfigError(
            "sampler=tasks draws tasks of reinforcement-learning task families such as dataset=navigation2d; "
            "this dataset needs sampler=episodic"
        )
    if not family and _reinforcement(container, "algorithm"):
        raise ConfigError(
            f"algorithm={_choice(container)} learns policies for reinforcement-learning task families such as "
            "dataset=navigation2d; for this dataset choose a few-shot learner such as algorithm=maml"
        )


def _choice(container: dict[str, Any]) -> str:
    """The algorithm option's name as the user typed it, from its target: maml_trpo, maml_ppo."""
    target = str(container["algorithm"].get("_target_", ""))
    return {"MAMLTRPO": "maml_trpo", "MAMLPPO": "maml_ppo"}.get(target.rsplit(".", 1)[-1], target)
