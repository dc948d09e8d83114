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
    "protonet": [*SETUP, "algorithm=protonet", *SGD],  # BatchNorm with running statistics, combined across ranks
    "maml": [*SETUP, "algorithm=maml", "algorithm.batching=loop", *SGD],
    "fomaml": [*SETUP, "algorithm=fomaml", "algorithm.batching=loop", *SGD],
    "reptile": [*SETUP, "algorithm=reptile", "algorithm.batching=loop"],  # its own update: the mean of the weights
    # TRPO's step: the gradient, curvature products and line search values are means over the meta-batch's tasks
    "maml_trpo": [
        "experiment=maml_trpo_navigation2d",
        "dataset.horizon=10",
        "sampler.tasks_per_batch=3",
        "sampler.trajectories=3",
        "sampler.eval_trajectories=4",
        "sampler.val_tasks=3",
        "sampler.test_tasks=5",
        "model.hidden_sizes=[8,8]",
        "algorithm.cg_iterations=3",
        "trainer.iterations=4",
        "trainer.val_interval=2",
        "trainer.log_interval=1",
        "trainer.progress=false",
        "device=cpu",
    ],
}
