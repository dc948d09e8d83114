"""The runs the multi-process tests compare with one process: tiny, and split unequally over two processes."""

from __future__ import annotations

from tests.support import TINY

# 5 tasks per meta-batch and 5 / 7 evaluation episodes: two processes get unequal parts (3 and 2, 3 and 4)
SETUP = [
    *TINY,
    "trainer.iterations=4",
    "trainer.val_interval=2",
    "trainer.log_interval=1",
    "sampler.tasks_per_batch=5",
    "sampler.val_episodes=5",
    "sampler.test_episodes=7",
]
# The outer optimiser is SGD: Adam divides each gradient coordinate by its running magnitude, which turns rounding
# differences in near-zero coordinates (the order of the ranks' additions) into differences of a whole step.
SGD = ["trainer.optimizer=sgd", "trainer.lr=0.05"]
ALGORITHMS = {
    "protonet": ["algorithm=protonet", *SGD],  # BatchNorm with running statistics: they are combined across ranks
    "maml": ["algorithm=maml", "algorithm.batching=loop", *SGD],
    "fomaml": ["algorithm=fomaml", "algorithm.batching=loop", *SGD],
    "reptile": ["algorithm=reptile", "algorithm.batching=loop"],  # its own outer update: the mean of the tasks' weights
}
