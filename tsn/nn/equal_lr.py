"""StyleGAN-style equalised learning rate layers, as in the authors' release.

Weights are stored as N(0, 1) and scaled at run time by sqrt(2 / fan_in), so
Adam's per-parameter step size is the same for every layer regardless of its
fan-in. With ``equalized=False`` the same layer is an ordinary He-initialised
linear layer (identical at initialisation, different under training).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class PixelNorm(nn.Module):
    """Normalise each vector to unit root-mean-square."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 bias_init: float | Tensor = 0.0, equalized: bool = True) -> None:
        super().__init__()
        he = math.sqrt(2.0 / in_features)
        self.scale = he if equalized else 1.0
        self.weight = nn.Parameter(torch.randn(out_features, in_features) * (1.0 if equalized else he))
        self.bias = nn.Parameter(torch.zeros(out_features) + bias_init) if bias else None
        self.in_features, self.out_features, self.equalized = in_features, out_features, equalized

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, equalized={self.equalized}"
