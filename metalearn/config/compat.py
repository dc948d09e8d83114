"""Configs saved by earlier versions of metalearn (in checkpoints and run directories), read as today's.

Earlier, MAML's schema carried the five MAML++ options, off by default, and `algorithm=maml++` was MAML
with them on. MAML++ is now its own learner (metalearn.algorithms.mamlpp.MAMLPlusPlus) with the same
parameter names, so its checkpoints load unchanged once the config names it.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, open_dict

_MAML = "metalearn.algorithms.maml.MAML"
_MAMLPP = "metalearn.algorithms.mamlpp.MAMLPlusPlus"
# the MAML++ options as MAML's old schema had them, with the values that meant "off"
_MAMLPP_OFF: dict[str, Any] = {
    "multi_step_loss": False,
    "multi_step_loss_iterations": 0,
    "per_layer_inner_lr": False,
    "per_step_batch_norm": False,
    "first_order_iterations": 0,
}
_WITH_OLD_KEYS = (_MAML, "metalearn.algorithms.anil.ANIL", "metalearn.algorithms.metasgd.MetaSGD")


def upgrade_saved_config(cfg: DictConfig) -> DictConfig:
    """Rewrite, in place, what an earlier version saved into what today's schemas accept; returns `cfg`."""
    algorithm = cfg.get("algorithm")
    if not isinstance(algorithm, DictConfig) or algorithm.get("_target_") not in _WITH_OLD_KEYS:
        return cfg
    old = {k: algorithm[k] for k in _MAMLPP_OFF if k in algorithm}
    if not old:
        return cfg
    with open_dict(algorithm):
        if algorithm._target_ == _MAML and any(old[k] != _MAMLPP_OFF[k] for k in old):
            algorithm._target_ = _MAMLPP  # an old maml++ run: the same parameters, now under their own learner
        elif all(old[k] == _MAMLPP_OFF[k] for k in old):
            for key in old:
                del algorithm[key]
    return cfg
