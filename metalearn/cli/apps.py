"""metalearn's two Hydra apps over conf/: one trains (conf/config.yaml), one scores a checkpoint (conf/eval.yaml)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from metalearn.cli.composition import config_dir
from metalearn.cli.job import job


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def train_app(cfg: DictConfig) -> float | None:
    """`metalearn ...`: meta-train, then test the best checkpoint."""
    return job(cfg)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="eval")
def eval_app(cfg: DictConfig) -> float | None:
    """`metalearn mode=eval checkpoint=PATH ...`: score a checkpoint, composed from its own saved config."""
    return job(cfg)
