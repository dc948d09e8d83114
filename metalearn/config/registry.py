"""Which schema validates which config node."""

from __future__ import annotations

from metalearn.config.groups import algorithm, dataset, image_data, model, run, sampler
from metalearn.config.schema import Schema


def _by_target(*schemas: type[Schema]) -> dict[str, type[Schema]]:
    return {s._target_: s for s in schemas}  # type: ignore[attr-defined]


# Per group with `_target_`: a node is validated against the schema of its target.
SCHEMAS: dict[str, dict[str, type[Schema]]] = {
    "dataset": _by_target(dataset.GlyphsConfig, dataset.SinusoidConfig, dataset.OmniglotConfig, *image_data.SCHEMAS),
    "sampler": _by_target(sampler.EpisodicSamplerConfig),
    "algorithm": _by_target(
        algorithm.ProtoNetConfig,
        algorithm.MAMLConfig,
        algorithm.ANILConfig,
        algorithm.MetaSGDConfig,
        algorithm.ReptileConfig,
    ),
    "model": _by_target(model.Conv4Config, model.MLPConfig),
    "trainer": _by_target(run.TrainerConfig),
}
# Groups without a target: one fixed schema each.
FIXED_SCHEMAS: dict[str, type[Schema]] = {"device": run.DeviceConfig, "eval": run.EvalConfig}
TopLevel = run.TopLevel
