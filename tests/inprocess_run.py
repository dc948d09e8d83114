"""Compose a config with Hydra's compose API and run it in this process (no interpreter start-up per run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from metalearn.cli import config_dir

# Smaller still than conftest.FAST: 16x16 glyphs, an 8-channel Conv4, a few episodes. Seconds per run.
TINY = [
    "dataset.train_classes=20",
    "dataset.val_classes=6",
    "dataset.test_classes=6",
    "dataset.image_size=16",
    "model.hidden_channels=8",
    "sampler.q_query=3",
    "sampler.val_episodes=4",
    "sampler.test_episodes=8",
    "trainer.progress=false",
    "device=cpu",
]


def compose_config(overrides: list[str]) -> tuple[DictConfig, dict[str, str]]:
    """The config `metalearn OVERRIDES` would run, and its group choices."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    choices = {k: v for k, v in cfg.hydra.runtime.choices.items() if not k.startswith("hydra")}
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices


def run_inprocess(run_dir: Path, *overrides: str) -> dict[str, Any]:
    """metalearn.run.run on the composed config, on one thread (tiny tensors: more threads only contend
    with the other tests' processes); restores torch's thread count and determinism flag afterwards."""
    from metalearn.run import run

    cfg, choices = compose_config(list(overrides))
    was_deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run(cfg, Path(run_dir), list(overrides), choices)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        torch.set_num_threads(threads)
