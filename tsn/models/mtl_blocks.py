"""Pieces shared by the comparison architectures (cross-stitch, NDDR-CNN,
MTAN, PAD-Net, MTI-Net): the encoder run stage by stage, the residual and
attention blocks of Multi-Task-Learning-PyTorch (Vandenhende et al.), and
the convention for auxiliary (deep-supervision) outputs.

Auxiliary predictions are returned in training mode only, under the key
``"<task>@<tag>"`` (``AUX_SEP``), at their own resolution;
:class:`tsn.losses_aux.DeepSupervisionLoss` upsamples each to its task's
label and adds its loss to that task's loss. In eval mode the models return
exactly one tensor per requested task, like every other model.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from tsn.errors import ConfigError
from tsn.models.encoders import ResNetEncoder

AUX_SEP = "@"


def aux_key(task: str, tag: str) -> str:
    return f"{task}{AUX_SEP}{tag}"


def encoder_stages(enc: ResNetEncoder) -> list[Callable[[Tensor], Tensor]]:
    """The encoder's five stages as functions: stem (H/2), layer1 (H/4, behind
    the max-pool), layer2..layer4; chaining them gives ``enc(x)``'s levels."""
    return [
        lambda x: enc.relu(enc.bn1(enc.conv1(x))),
        lambda x: enc.layer1(enc.maxpool(x)),
        enc.layer2, enc.layer3, enc.layer4,
    ]


def basic_block(cin: int, cout: int) -> BasicBlock:
    """torchvision's BasicBlock, with a 1x1 conv + BN projection when the width changes."""
    down = None if cin == cout else nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
    return BasicBlock(cin, cout, downsample=down)


def bottleneck(cin: int, cout: int) -> Bottleneck:
    """torchvision's Bottleneck with cout // 4 inner channels (cout must divide by 4)."""
    if cout % 4:
        raise ConfigError(f"a bottleneck block needs a width divisible by 4, got {cout}")
    down = None if cin == cout else nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
    return Bottleneck(cin, cout // 4, downsample=down)


class SABlock(nn.Module):
    """Spatial attention of PAD-Net's distillation: conv(x) * sigmoid(conv'(x)), 3x3, no bias."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.attention = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x) * torch.sigmoid(self.attention(x))


class SEBlock(nn.Module):
    """Squeeze-and-excitation (reduction 16; at least one hidden unit, so that
    the narrow CPU-sized widths work)."""

    def __init__(self, channels: int, r: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // r)
        self.squeeze = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        return x * self.squeeze(x.mean(dim=(2, 3)))[:, :, None, None]


class Distillation(nn.Module):
    """PAD-Net's multi-modal distillation: task t's features plus, for every
    other task s, SA_{t,s}(features of s)."""

    def __init__(self, tasks: list[str], channels: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleDict({t: nn.ModuleDict({s: SABlock(channels) for s in tasks if s != t}) for t in tasks})

    def forward(self, feats: dict[str, Tensor], task: str) -> Tensor:
        out = feats[task]
        for s, blk in self.blocks[task].items():
            out = out + blk(feats[s])
        return out


def shared_then_rest(model: nn.Module, prefixes: tuple[str, ...]) -> list[nn.Parameter]:
    """Trainable parameters whose names start with one of ``prefixes``."""
    return [p for n, p in model.named_parameters() if n.startswith(prefixes) and p.requires_grad]


__all__ = ["AUX_SEP", "Distillation", "SABlock", "SEBlock", "aux_key", "basic_block", "bottleneck",
           "encoder_stages", "shared_then_rest"]
