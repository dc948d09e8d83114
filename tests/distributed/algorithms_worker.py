"""Run by test_torchrun.py under `torchrun --nproc_per_node=2`: train and test each algorithm of ALGORITHMS on two
processes, in one process group (one start-up for all of them), into OUT/NAME/. Usage: algorithms_worker.py OUT"""

from __future__ import annotations

import sys
from pathlib import Path

from metalearn.cli import compose_config
from metalearn.execution import ranks
from metalearn.run import run
from tests.distributed.setups import ALGORITHMS

if __name__ == "__main__":
    out = Path(sys.argv[1])
    assert ranks.join(120.0) and ranks.world_size() == 2
    for name, overrides in ALGORITHMS.items():
        cfg, choices = compose_config(overrides)
        run(cfg, out / name, overrides, choices)
    ranks.leave()
