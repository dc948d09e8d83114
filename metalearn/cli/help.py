"""`metalearn --help`: the page conf/app.yaml's hydra.help template describes, made without Hydra's help command.

Hydra's command lists each config group's options through a fresh deep copy of its whole config repository, once
per group and twice per level (about a second for metalearn's groups and schemas, on every --help). The page is the
same here, with the groups read from the config folders and the config composed once.
"""

from __future__ import annotations

import string
from pathlib import Path

from omegaconf import OmegaConf, open_dict

from metalearn.cli.composition import compose, config_dir


def config_groups(folders: list[Path]) -> dict[str, list[str]]:
    """group -> its options, from the YAML files under FOLDERS (Hydra's own groups, hydra/..., left out)."""
    groups: dict[str, set[str]] = {}
    for folder in folders:
        for path in Path(folder).rglob("*.yaml"):
            group = path.parent.relative_to(folder).as_posix()
            if group != "." and group.split("/")[0] != "hydra":
                groups.setdefault(group, set()).add(path.stem)
    return {group: sorted(options) for group, options in sorted(groups.items())}


def help_page(overrides: list[str], config_name: str, config_dirs: tuple[str, ...] = (), resolve: bool = False) -> str:
    """What `metalearn [--config-dir DIR] [--resolve] --help OVERRIDES` prints: the header, the config groups and
    their options, the composed config and the footer."""
    cfg = compose(overrides, config_name, config_dirs)
    template = str(cfg.hydra.help.template)  # its header and footer interpolated
    folders = [config_dir(), *(Path(d) for d in config_dirs)]
    groups = "".join(f"{group}: {', '.join(options)}\n" for group, options in config_groups(folders).items())
    with open_dict(cfg):
        del cfg["hydra"]
    return string.Template(template).safe_substitute(
        APP_CONFIG_GROUPS=groups, CONFIG=OmegaConf.to_yaml(cfg, resolve=resolve)
    )
