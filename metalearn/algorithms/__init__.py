"""Meta-learning algorithms, all behind the one MetaLearner interface."""

from metalearn.algorithms.base import MetaLearner, StepOutput
from metalearn.algorithms.maml import MAML
from metalearn.algorithms.protonet import ProtoNet

__all__ = ["MAML", "MetaLearner", "ProtoNet", "StepOutput"]
