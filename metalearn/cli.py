"""The `metalearn` command (and `python -m metalearn`): a Hydra app over conf/."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from metalearn.errors import MetalearnError


def config_dir() -> Path:
    """conf/ beside the package in a source checkout or editable install; metalearn/conf in a wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "conf", here / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise RuntimeError(f"metalearn's configs are missing: looked in {here.parent / 'conf'} and {here / 'conf'}")


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def _app(cfg: DictConfig) -> None:
    from metalearn.run import run  # imported here so --help stays fast

    hydra_cfg = HydraConfig.get()
    try:
        run(cfg, Path(hydra_cfg.runtime.output_dir), list(hydra_cfg.overrides.task), dict(hydra_cfg.runtime.choices))
    except MetalearnError as exc:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"Error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)


def main() -> None:
    _app()
