"""Which schema validates which config node, and the schemas' defaults registered in Hydra's ConfigStore.

Each schema's defaults are stored under its class name (`MAMLConfig`, `TrainerConfig`, ...) as a root
config, so an option's YAML file inherits them through its defaults list (`- /MAMLConfig@_here_`) and
holds only what differs. Validation (validate.py) checks types, keys and values against the same classes.
"""

from __future__ import annotations

import dataclasses

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from metalearn.config.groups import algorithm, dataset, image_data, logger, model, run, sampler
from metalearn.config.schema import Schema


def _by_target(*schemas: type[Schema]) -> dict[str, type[Schema]]:
    return {s._target_: s for s in schemas}  # type: ignore[attr-defined]


# Per group with `_target_`: a node is validated against the schema of its target. Other importable targets
# are checked against their own `config_schema` or their signature (validate.py).
SCHEMAS: dict[str, dict[str, type[Schema]]] = {
    "dataset": _by_target(
        dataset.GlyphsConfig,
        dataset.GlyphClipsConfig,
        dataset.SinusoidConfig,
        dataset.OmniglotConfig,
        dataset.Navigation2DConfig,
        dataset.BanditConfig,
        dataset.GymConfig,
        *image_data.SCHEMAS,
    ),
    "sampler": _by_target(sampler.EpisodicSamplerConfig, sampler.BatchSamplerConfig, sampler.TaskSamplerConfig),
    "algorithm": _by_target(
        algorithm.ProtoNetConfig,
        algorithm.OTAMConfig,
        algorithm.TRXConfig,
        algorithm.MatchingNetConfig,
        algorithm.RelationNetConfig,
        algorithm.R2D2Config,
        algorithm.MetaOptNetConfig,
        algorithm.BaselineConfig,
        algorithm.MAMLConfig,
        algorithm.MAMLPlusPlusConfig,
        algorithm.ANILConfig,
        algorithm.MetaSGDConfig,
        algorithm.ReptileConfig,
        algorithm.MAMLTRPOConfig,
        algorithm.MAMLPPOConfig,
    ),
    "model": _by_target(model.Conv4Config, model.ResNet12Config, model.TorchvisionResNetConfig, model.MLPConfig),
    "trainer": _by_target(run.TrainerConfig),
    "logger": _by_target(
        logger.JsonlLoggerConfig,
        logger.CsvLoggerConfig,
        logger.TensorBoardLoggerConfig,
        logger.WandbLoggerConfig,
        logger.MlflowLoggerConfig,
    ),
}
# Groups newer than some saved configs (checkpoints written before the group existed): absent means this option.
ABSENT_MEANS: dict[str, type[Schema]] = {"logger": logger.JsonlLoggerConfig}
# Groups without a target: one fixed schema each.
FIXED_SCHEMAS: dict[str, type[Schema]] = {"device": run.DeviceConfig, "eval": run.EvalConfig}
TopLevel = run.TopLevel
# What the constructor of each group's target receives at run time besides its config keys.
RUNTIME_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "dataset": (),
    "sampler": ("data",),
    "model": ("input_shape",),
    "algorithm": ("backbone", "task", "n_way"),
    "trainer": (),
    "logger": ("run_dir",),
}


def schema_defaults(schema: type[Schema]) -> dict:
    """The schema's keys with their default values, as plain data."""
    return dataclasses.asdict(schema())  # type: ignore[call-overload]


def register_schemas() -> None:
    """Store every schema's defaults in Hydra's ConfigStore (idempotent); `RunConfig` holds the top level."""
    store = ConfigStore.instance()
    for schema in {s for group in SCHEMAS.values() for s in group.values()} | {run.DeviceConfig}:
        store.store(name=schema.__name__, node=OmegaConf.create(schema_defaults(schema)))
    top = {**schema_defaults(TopLevel), "eval": schema_defaults(run.EvalConfig)}
    store.store(name="RunConfig", node=OmegaConf.create(top))


register_schemas()  # importing metalearn.config makes the defaults available to whoever composes conf/
