"""Composing a run's config with Hydra's public compose API, as the command will: the primary config (a
checkpoint's own for mode=eval), and every value of a sweep."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from metalearn.cli.arguments import last_values
from metalearn.cli.resolvers import register_resolvers
from metalearn.errors import MetalearnError


def config_dir() -> Path:
    """conf/ beside the package in a source checkout or editable install; metalearn/conf in a wheel.

    Registers the schemas' defaults in Hydra's ConfigStore too, which the YAML files inherit, so whoever
    composes metalearn's configs (this command, the tests, a notebook) gets both from here.
    """
    from metalearn.config.registry import register_schemas

    register_schemas()
    package = Path(__file__).resolve().parent.parent
    for candidate in (package.parent / "conf", package / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise RuntimeError(f"metalearn's configs are missing: looked in {package.parent / 'conf'} and {package / 'conf'}")


def prepare(overrides: list[str]) -> str:
    """The primary config for OVERRIDES: "config", or "eval" with mode=eval, after registering the checkpoint's
    saved config (as `checkpoint_config`) in Hydra's ConfigStore. Raises MetalearnError for a checkpoint that
    cannot be read; Hydra's OverrideParseException for malformed overrides."""
    register_resolvers()
    values = last_values(overrides)
    resume = values.get("resume")
    if resume not in (None, "", "null"):
        from metalearn.training.resume import run_dir_of

        if not Path(resume).expanduser().exists():
            raise MetalearnError(
                f"resume={resume}: no such file or directory; give the run directory of the run to continue"
            )
        run_dir_of(resume)  # a path that names no run directory is refused here, in one line
    checkpoint = values.get("checkpoint")
    if values.get("mode") != "eval" or checkpoint in (None, "", "null"):
        return "config"  # without a checkpoint, validation says what mode=eval needs
    from hydra.core.config_store import ConfigStore
    from omegaconf import open_dict

    from metalearn.training.checkpoint import load_checkpoint, require, saved_config

    blob = load_checkpoint(checkpoint)
    require(blob, checkpoint, ("config", "learner"), "evaluate")
    saved = saved_config(blob["config"], f"checkpoint {checkpoint}")
    if isinstance(saved.get("dataset"), DictConfig) and "cache_dir" in saved.dataset:
        with open_dict(saved):
            saved.dataset.cache_dir = None  # where this run writes comes from its own command or environment
    ConfigStore.instance().store(name="checkpoint_config", node=saved)
    return "eval"


def compose_config(overrides: list[str]) -> tuple[DictConfig, dict[str, str]]:
    """The config `metalearn OVERRIDES` runs (without Hydra's own node), and its group choices.

    For scripts, notebooks and tests that build metalearn's components without the command line.
    """
    from omegaconf import open_dict

    cfg = compose(overrides, prepare(overrides))
    choices = {k: v for k, v in cfg.hydra.runtime.choices.items() if not k.startswith("hydra")}
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices


def compose(overrides: list[str], config_name: str, config_dirs: tuple[str, ...] = ()) -> DictConfig:
    """Hydra's compose API over conf/ (and the folders of --config-dir), Hydra's own node included."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    extra = (
        [f"hydra.searchpath=[{','.join(f'file://{Path(d).resolve()}' for d in config_dirs)}]"] if config_dirs else []
    )
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return hydra_compose(config_name, overrides=[*overrides, *extra], return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


def sweep_variants(overrides: list[str], most: int = 64) -> list[list[str]]:
    """Override lists that between them use every value of every swept key once (the others at their first
    value), so that an unknown option or key anywhere in the sweep is found before its first job runs. Sweeps
    without a list of values (a sweeper's interval(...)) are left to the sweeper."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    values: list[list[str]] = []
    for override in parsed:
        if not override.is_sweep_override():
            values.append([override.input_line])
            continue
        try:
            key = override.get_key_element()
            values.append([f"{key}={value}" for value in override.sweep_string_iterator()])
        except Exception:  # not a list of values: the sweeper draws them
            values.append([])
    first = [options[0] for options in values if options]
    variants = [first]
    for index, options in enumerate(values):
        for option in options[1:]:
            variant = [o[0] if i != index else option for i, o in enumerate(values) if o]
            variants.append(variant)
    return variants[:most]
