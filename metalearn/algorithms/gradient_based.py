"""What the gradient-based family (MAML, FOMAML, MAML++, ANIL, Meta-SGD, Reptile) shares: a backbone with a
linear head, adapted per task by an inner loop that `metalearn.execution` maps over the meta-batch."""

from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from metalearn.algorithms.base import MetaLearner, set_batch_norm_mode
from metalearn.episode import EpisodeBatch
from metalearn.execution import choose_path, map_tasks

Params = dict[str, Tensor]


def attribute_name(name: str) -> str:
    """A parameter's name as a module attribute name (parameter names contain dots, attribute names may not)."""
    return name.replace(".", "__")


class GradientBasedLearner(MetaLearner):
    """Base of the gradient-based family: `net` = backbone + a linear head of the episode's output size.

    Args:
        backbone, task, n_way: as MetaLearner.
        batch_norm: "transductive" (each task's own batch statistics) or "running".
        batching: "vmap", "loop", "threads" or "auto": the execution path (metalearn.execution).
    """

    def __init__(self, backbone: nn.Module, task: str, n_way: int, batch_norm: str, batching: str) -> None:
        super().__init__(backbone, task, n_way)
        self.head = nn.Linear(backbone.out_features, self.out_dim)
        self.net = nn.Sequential(backbone, self.head)
        set_batch_norm_mode(self.net, batch_norm)
        self.batch_norm, self.batching = batch_norm, batching

    def path(self, purpose: str) -> str:
        """The execution path for `purpose` ("train" or "eval")."""
        return choose_path(self.batching, self.batch_norm, self)

    def theta(self, detach: bool = False) -> Params:
        """The meta-parameters of the network, by name."""
        return {n: (p.detach() if detach else p) for n, p in self.net.named_parameters()}

    def task_predictor(self) -> Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]:
        """The per-task evaluation function: (support_x, support_y, query_x, query_y) -> query outputs."""
        raise NotImplementedError

    def predict_batch(self, batch: EpisodeBatch) -> Tensor:
        predict = self.task_predictor()
        return map_tasks(lambda *task: (predict(*task),), batch, self.path("eval"), self)[0].detach()
