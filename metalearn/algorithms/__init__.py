"""Meta-learning algorithms, all behind the one MetaLearner interface."""

from metalearn.algorithms.anil import ANIL
from metalearn.algorithms.base import MetaLearner, StepOutput
from metalearn.algorithms.maml import MAML
from metalearn.algorithms.mamlpp import MAMLPlusPlus
from metalearn.algorithms.metasgd import MetaSGD
from metalearn.algorithms.protonet import ProtoNet
from metalearn.algorithms.reptile import Reptile

__all__ = ["ANIL", "MAML", "MAMLPlusPlus", "MetaLearner", "MetaSGD", "ProtoNet", "Reptile", "StepOutput"]
