"""Building blocks: equalised-lr linear layers, the task embedding network C,
conditional normalisations and the conditional convolution module A;
``tsn.nn.ops`` holds the tensor operations with their reference and fast
paths (``set_fast_kernels`` / ``fast_kernels`` choose)."""

from tsn.nn.blocks import CondConv
from tsn.nn.condition import Condition
from tsn.nn.embedding import TaskEmbedding
from tsn.nn.equal_lr import EqualLinear, PixelNorm
from tsn.nn.norms import NORMS, AdaIN, AffineIN, TaskBN, TaskIN, build_norm
from tsn.nn.ops import fast_kernels, fast_kernels_enabled, set_fast_kernels

__all__ = [
    "AdaIN", "AffineIN", "CondConv", "Condition", "EqualLinear", "NORMS", "PixelNorm",
    "TaskBN", "TaskEmbedding", "TaskIN", "build_norm", "fast_kernels", "fast_kernels_enabled", "set_fast_kernels",
]
