"""One source of truth: every component's constructor defaults equal its schema's, and the YAML files only
hold what differs from the schemas."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import yaml
from hydra.utils import get_object

from metalearn.cli import config_dir
from metalearn.config.groups.run import DeviceConfig
from metalearn.config.registry import RUNTIME_ARGUMENTS, SCHEMAS, schema_defaults

TARGETS = [(group, target, schema) for group, by_target in SCHEMAS.items() for target, schema in by_target.items()]
# constructor parameters that are not config keys: what a task source reports about itself
NOT_KEYS = {
    "metalearn.data.sinusoid.SinusoidTasks": {"name", "task", "input_shape"},
    # the task family, which run._build gives the reinforcement-learning learners at run time
    "metalearn.algorithms.maml_trpo.MAMLTRPO": {"family"},
    "metalearn.algorithms.maml_ppo.MAMLPPO": {"family"},
}


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def _parameters(cls: type) -> dict[str, inspect.Parameter]:
    """A constructor's named parameters, with those of the base classes it forwards **kwargs to."""
    named: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(klass.__init__).parameters
        named.update(
            {n: p for n, p in parameters.items() if n != "self" and p.kind != p.VAR_KEYWORD and n not in named}
        )
        if not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
            break
    return named


@pytest.mark.parametrize("group, target, schema", TARGETS, ids=[t for _, t, _ in TARGETS])
def test_constructor_defaults_equal_the_schema(group, target, schema):
    target_object = get_object(target)
    parameters = (
        _parameters(target_object) if isinstance(target_object, type) else inspect.signature(target_object).parameters
    )
    keys = {f.name for f in dataclasses.fields(schema)} - {"_target_"}
    constructor = {n for n in parameters if n not in RUNTIME_ARGUMENTS[group]} - NOT_KEYS.get(target, set())
    assert keys == constructor, f"{target}: schema keys and constructor parameters differ"
    defaults = schema_defaults(schema)
    for key in keys:
        assert _plain(parameters[key].default) == defaults[key], f"{target}: {key} defaults differ"


def _yaml_files():
    return sorted(
        p for p in config_dir().glob("*/*.yaml") if p.parent.name not in ("experiment", "debug", "hparams_search")
    )


BY_NAME = {s.__name__: s for by_target in SCHEMAS.values() for s in by_target.values()} | {"DeviceConfig": DeviceConfig}


def _own_and_inherited(path) -> tuple[dict, dict]:
    """An option file's own keys, and the values it inherits from its parent (a schema or another option)."""
    text = path.read_text()
    own = yaml.safe_load(text)
    # an option that also picks another group's option (`override /sampler: batches`) is global and nests its keys
    parents = [p for p in own.pop("defaults") if not (isinstance(p, dict) and next(iter(p)).startswith("override "))]
    if text.startswith("# @package _global_"):
        assert set(own) <= {path.parent.name}, f"{path.name}: a global option sets only its own group's keys"
        own = own.get(path.parent.name, {})
    assert len(parents) == 2 and parents[-1] == "_self_", f"{path.name}: one parent, then _self_"
    if parents[0].startswith("/"):  # a schema, `/NameConfig@_here_`
        return own, schema_defaults(BY_NAME[parents[0][1:].split("@")[0]])
    parent_own, parent_inherited = _own_and_inherited(path.parent / f"{parents[0]}.yaml")
    return own, {**parent_inherited, **parent_own}


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_option_files_restate_no_default(path):
    own, inherited = _own_and_inherited(path)
    for key, value in own.items():
        assert key in inherited, f"{path.name} sets {key}, which its schema does not have"
        assert inherited[key] != value, f"{path.name} restates {key}={value!r}, which it inherits"
