"""Cross-stitch networks and NDDR-CNN: one encoder-decoder per task whose
encoder columns exchange features after every stage.

- cross-stitch (Misra, Shrivastava, Gupta & Hebert, CVPR 2016): after
  stage k, column i continues with sum_j alpha^k_{ij} * x^k_j, one alpha per
  channel and task pair (channel-wise as in Multi-Task-Learning-PyTorch,
  ``models/cross_stitch.py``; the paper's units are scalars per pair),
  initialised to ``alpha`` on the diagonal and ``beta`` elsewhere (0.9 / 0.1,
  the reference's configs).
- NDDR-CNN (Gao, Ma, Zhao, Liu & Yuille, CVPR 2019): after stage k, column i
  continues with ReLU(BN(W^k_i [x^k_1, ..., x^k_T])), a 1x1 convolution
  over the concatenated columns, initialised to ``alpha`` times the identity
  on its own block and ``beta`` times the identity on the others (the
  reference's diagonal initialisation, 0.9 / 0.1), BN momentum 0.05 (the
  reference's, taken there from the NDDR-CNN code).

Both follow Multi-Task-Learning-PyTorch's structure, with these changes:
the exchange sits after all five stages of the project's ResNet (stem,
layer1..layer4; the reference's cross-stitch skips the stem), each task
decodes its own stitched levels with the project's per-task U-Net decoder
and heads (the single-task baseline's), instead of a DeepLab head on the
last level, and the columns are the project's (undilated) ResNet. The
reference trains the exchange at 100x the backbone's learning rate; here
it is in the ``decoder`` optimizer group (``optim.lr``), which in the
PASCAL recipe is 100x ``optim.encoder_lr``.

Every step runs all T columns whatever tasks are asked for (each column
feeds the others), so ``train.sampling: all`` is the sensible strategy;
one-task sampling works but pays for T columns per step.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from tsn.errors import ConfigError
from tsn.models.base import MultiTaskModel
from tsn.models.baselines import _single
from tsn.models.decoders import UNetDecoder
from tsn.models.encoders import ResNetEncoder
from tsn.models.heads import TaskHeads
from tsn.models.mtl_blocks import encoder_stages
from tsn.models.registry import MODELS, _encoder, _per_task_decoders


def _check_init(alpha: float, beta: float) -> None:
    for k, v in (("alpha", alpha), ("beta", beta)):
        if not (isinstance(v, (int, float)) and math.isfinite(v)):
            raise ConfigError(f"model option {k} must be a finite number, got {v!r}")


class CrossStitchUnit(nn.Module):
    """out_i = sum_j weight[i, j] * x_j, channel-wise: weight is [T, T, C]."""

    def __init__(self, n_tasks: int, channels: int, alpha: float, beta: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_tasks, n_tasks, channels))
        with torch.no_grad():
            self.weight.fill_(beta)
            for i in range(n_tasks):
                self.weight[i, i].fill_(alpha)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        out = []
        for i in range(len(xs)):
            acc = None
            for j, x in enumerate(xs):
                term = self.weight[i, j].view(1, -1, 1, 1) * x
                acc = term if acc is None else acc + term
            out.append(acc)
        return out


class NDDRLayer(nn.Module):
    """out_i = ReLU(BN_i(conv1x1_i(cat_j x_j))), conv_i: T*C -> C without bias."""

    def __init__(self, n_tasks: int, channels: int, alpha: float, beta: float) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(n_tasks * channels, channels, 1, bias=False) for _ in range(n_tasks))
        self.bns = nn.ModuleList(nn.BatchNorm2d(channels, momentum=0.05) for _ in range(n_tasks))
        self.act = nn.ReLU(inplace=True)
        eye = torch.arange(channels)
        with torch.no_grad():
            for i, conv in enumerate(self.convs):
                w = conv.weight.view(channels, n_tasks, channels)  # [out, task, in]
                w.zero_()
                for j in range(n_tasks):
                    w[eye, j, eye] = alpha if i == j else beta

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        x = torch.cat(xs, dim=1)
        return [self.act(bn(conv(x))) for conv, bn in zip(self.convs, self.bns)]


class ExchangeNet(MultiTaskModel):
    """T encoder columns with an exchange unit after every stage, then one
    U-Net decoder and head per task on its own column's levels."""

    def __init__(self, task_channels: dict[str, int], encoders: dict[str, ResNetEncoder], exchange: list[nn.Module],
                 decoders: dict[str, UNetDecoder], heads: dict[str, TaskHeads]) -> None:
        super().__init__(task_channels)
        self.encoders = nn.ModuleDict(encoders)
        self.exchange = nn.ModuleList(exchange)
        self.decoders, self.heads = nn.ModuleDict(decoders), nn.ModuleDict(heads)

    def columns(self, x: Tensor) -> dict[str, list[Tensor]]:
        """Every task's five (exchanged) levels."""
        stages = [encoder_stages(self.encoders[t]) for t in self.tasks]
        levels: list[list[Tensor]] = [[] for _ in self.tasks]
        cur = [x] * len(self.tasks)
        for k, unit in enumerate(self.exchange):
            cur = unit([stages[i][k](c) for i, c in enumerate(cur)])
            for i, c in enumerate(cur):
                levels[i].append(c)
        return dict(zip(self.tasks, levels))

    def forward_tasks(self, x: Tensor, tasks: list[str], code: Tensor | None = None) -> dict[str, Tensor]:
        feats, cond = self.columns(x), _single(x)
        return {t: self.heads[t](self.decoders[t](feats[t], cond, x.shape[-2:]), t) for t in tasks}

    def shared_parameters(self) -> list[nn.Parameter]:
        """Columns and exchange units: each task's output depends on all of them."""
        return [p for n, p in self.named_parameters() if n.startswith(("encoders.", "exchange.")) and p.requires_grad]

    def gradnorm_parameters(self) -> list[nn.Parameter]:
        last = self.exchange[-1]
        if isinstance(last, CrossStitchUnit):
            return [last.weight]
        # NDDR's last layer is per task; its input, the columns' last convolutions, is shared by all
        return [[m.weight for m in self.encoders[t].layer4.modules() if isinstance(m, nn.Conv2d)][-1] for t in self.tasks]


def _build(unit: type[nn.Module]):
    def build(cfg, task_channels: dict[str, int], *, alpha: float = 0.9, beta: float = 0.1) -> ExchangeNet:
        _check_init(alpha, beta)
        encs = {t: _encoder(cfg) for t in task_channels}
        channels = next(iter(encs.values())).channels
        exchange = [unit(len(task_channels), c, float(alpha), float(beta)) for c in channels]
        return ExchangeNet(task_channels, encs, exchange, *_per_task_decoders(cfg, task_channels, channels))

    return build


MODELS.register("cross_stitch")(_build(CrossStitchUnit))
MODELS.register("nddr")(_build(NDDRLayer))

__all__ = ["CrossStitchUnit", "ExchangeNet", "NDDRLayer"]
