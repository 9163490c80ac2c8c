"""MTAN, the Multi-Task Attention Network (Liu, Johns & Davison, CVPR 2019),
on a ResNet as in Multi-Task-Learning-PyTorch (``models/mtan.py``).

One shared encoder; per task and per stage k = 1..4 (layer1..layer4) a soft
attention mask

    m^t_k = sigmoid(BN(conv1x1(ReLU(BN(conv1x1(in^t_k))))))   (C_k -> C_k/4 -> C_k)

applied to the stage's output, a^t_k = m^t_k * u_k, where the mask reads
the output of the stage's blocks before the last, u'_k, and (k > 1) the
task's attended features of the previous stage brought to stage k by a
shared refinement block (a Bottleneck to C_k, then 2x2 max-pool):
in^t_1 = u'_1, in^t_k = [u'_k, pool(refine_{k-1}(a^t_{k-1}))].

Changes from the reference: each task decodes the levels
[stem, a^t_1, a^t_2, a^t_3, a^t_4] with the project's per-task U-Net decoder
and heads (the multi-decoder baseline's) instead of a DeepLab head on
a^t_4; the ResNet is undilated, so every refinement is followed by the
2x2 pooling (the reference pools after the first only), with ``ceil_mode``
so that odd sizes match the stride-2 stages.

Tasks are independent past the shared encoder and refinements, so every
sampling strategy fits; a subset of tasks computes only their attention
branches and decoders.
"""

from __future__ import annotations

from torch import Tensor, nn

import torch

from tsn.models.base import MultiTaskModel
from tsn.models.baselines import _single
from tsn.models.decoders import UNetDecoder
from tsn.models.encoders import ResNetEncoder
from tsn.models.heads import TaskHeads
from tsn.models.mtl_blocks import bottleneck
from tsn.models.registry import MODELS, _encoder, _per_task_decoders


def attention(cin: int, cout: int) -> nn.Sequential:
    mid = max(1, cout // 4)
    return nn.Sequential(nn.Conv2d(cin, mid, 1), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
                         nn.Conv2d(mid, cout, 1), nn.BatchNorm2d(cout), nn.Sigmoid())


class MTAN(MultiTaskModel):
    def __init__(self, task_channels: dict[str, int], encoder: ResNetEncoder,
                 decoders: dict[str, UNetDecoder], heads: dict[str, TaskHeads]) -> None:
        super().__init__(task_channels)
        self.encoder = encoder
        c = encoder.channels[1:]  # layer1..layer4
        self.attention = nn.ModuleList(
            nn.ModuleDict({t: attention(c[k] if k == 0 else 2 * c[k], c[k]) for t in task_channels}) for k in range(4))
        self.refine = nn.ModuleList(bottleneck(c[k], c[k + 1]) for k in range(3))
        self.pool = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.decoders, self.heads = nn.ModuleDict(decoders), nn.ModuleDict(heads)

    def forward_tasks(self, x: Tensor, tasks: list[str], code: Tensor | None = None) -> dict[str, Tensor]:
        enc = self.encoder
        stem = enc.relu(enc.bn1(enc.conv1(x)))
        h = enc.maxpool(stem)
        pre, full = [], []  # u'_k (before the stage's last block) and u_k
        for layer in (enc.layer1, enc.layer2, enc.layer3, enc.layer4):
            for blk in list(layer)[:-1]:
                h = blk(h)
            pre.append(h)
            h = layer[-1](h)
            full.append(h)
        cond, out = _single(x), {}
        for t in tasks:
            levels, prev = [stem], None
            for k in range(4):
                inp = pre[k] if prev is None else torch.cat([pre[k], prev], dim=1)
                a = self.attention[k][t](inp) * full[k]
                levels.append(a)
                if k < 3:
                    prev = self.pool(self.refine[k](a))
            out[t] = self.heads[t](self.decoders[t](levels, cond, x.shape[-2:]), t)
        return out

    def shared_parameters(self) -> list[nn.Parameter]:
        """The encoder and the shared refinement blocks."""
        return [p for n, p in self.named_parameters() if n.startswith(("encoder.", "refine.")) and p.requires_grad]


@MODELS.register("mtan")
def build_mtan(cfg, task_channels: dict[str, int]) -> MTAN:
    enc = _encoder(cfg)
    return MTAN(task_channels, enc, *_per_task_decoders(cfg, task_channels, enc.channels))


__all__ = ["MTAN"]
