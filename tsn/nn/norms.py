"""Normalisations that a decoder convolution is followed by.

They share one signature, ``norm(x, cond)``, so one decoder class serves
TSN (AdaIN from the task latent), the task-specific IN/BN baselines
(per-task affine tables) and the plain decoders (affine IN, no condition).
The instance norms are ``tsn.nn.ops``'s (reference or fast paths by the
explicit ``set_fast_kernels`` setting).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tsn.nn.condition import Condition
from tsn.nn.equal_lr import EqualLinear
from tsn.nn.ops import instance_norm, instance_norm_affine
from tsn.registry import Registry

NORMS: Registry = Registry("normalisation")


@NORMS.register("adain")
class AdaIN(nn.Module):
    """Instance norm without affine or running stats, then gamma * x + beta,
    with (gamma, beta) = one equalised-lr linear layer of the task latent
    (gamma's bias starts at 1, beta's at 0)."""

    def __init__(self, channels: int, n_tasks: int = 0, latent_dim: int = 100, equalized: bool = True) -> None:
        super().__init__()
        self.channels = channels
        bias = torch.cat([torch.ones(channels), torch.zeros(channels)])
        self.affine = EqualLinear(latent_dim, 2 * channels, bias_init=bias, equalized=equalized)

    def forward(self, x: Tensor, cond: Condition) -> Tensor:
        assert cond.latent is not None, "AdaIN needs the task latent"
        gamma, beta = self.affine(cond.latent).chunk(2, dim=1)
        return instance_norm_affine(x, gamma, beta)


@NORMS.register("task_in")
class TaskIN(nn.Module):
    """Instance norm with one (gamma, beta) pair per task."""

    def __init__(self, channels: int, n_tasks: int, **_: object) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n_tasks, channels))
        self.bias = nn.Parameter(torch.zeros(n_tasks, channels))

    def forward(self, x: Tensor, cond: Condition) -> Tensor:
        return instance_norm_affine(x, self.weight[cond.task_ids], self.bias[cond.task_ids])


@NORMS.register("task_bn")
class TaskBN(nn.Module):
    """One BatchNorm2d (statistics and affine) per task; each block of rows
    of a stacked batch goes through its own task's BN."""

    def __init__(self, channels: int, n_tasks: int, **_: object) -> None:
        super().__init__()
        self.bns = nn.ModuleList(nn.BatchNorm2d(channels) for _ in range(n_tasks))

    def forward(self, x: Tensor, cond: Condition) -> Tensor:
        if len(cond.blocks) == 1:
            return self.bns[cond.blocks[0][0]](x)
        return torch.cat([self.bns[t](x[rows]) for t, rows in cond.blocks])


@NORMS.register("in")
class AffineIN(nn.Module):
    """Plain instance norm with affine parameters (single-task decoders)."""

    def __init__(self, channels: int, n_tasks: int = 0, **_: object) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=True)

    def forward(self, x: Tensor, cond: Condition | None = None) -> Tensor:
        return instance_norm(x, self.norm.weight, self.norm.bias, self.norm.eps)


@NORMS.register("bn")
class PlainBN(nn.Module):
    def __init__(self, channels: int, n_tasks: int = 0, **_: object) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels)

    def forward(self, x: Tensor, cond: Condition | None = None) -> Tensor:
        return self.norm(x)


def build_norm(kind: str, channels: int, n_tasks: int, **opts: object) -> nn.Module:
    return NORMS.get(kind)(channels, n_tasks=n_tasks, **opts)
