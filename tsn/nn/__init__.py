"""Building blocks: equalised-lr linear layers, the task embedding network C,
conditional normalisations and the conditional convolution module A."""

from tsn.nn.blocks import CondConv
from tsn.nn.condition import Condition
from tsn.nn.embedding import TaskEmbedding
from tsn.nn.equal_lr import EqualLinear, PixelNorm
from tsn.nn.norms import NORMS, AdaIN, AffineIN, TaskBN, TaskIN, build_norm

__all__ = [
    "AdaIN", "AffineIN", "CondConv", "Condition", "EqualLinear", "NORMS", "PixelNorm",
    "TaskBN", "TaskEmbedding", "TaskIN", "build_norm",
]
