"""PAD-Net (Xu, Ouyang, Wang & Sebe, CVPR 2018), as in
Multi-Task-Learning-PyTorch (``models/padnet.py``, ``PADNetLoss``).

Shared encoder; its levels layer1..layer4 are upsampled to layer1's
resolution (H/4), concatenated and fused (the reference's
``HighResolutionFuse`` on HRNet); per task, two Bottlenecks give features
F_t (width D) and a 1x1 convolution the *initial prediction* of t;
multi-modal distillation gives G_t = F_t + sum_{s != t} SA_{t,s}(F_s) with
spatial-attention blocks SA(x) = conv3x3(x) * sigmoid(conv3x3'(x)); two
more Bottlenecks and the task's output convolution give the final
prediction, upsampled to the input size and passed through the task's head
(the project's ``TaskHeads``, as in every model here).

The initial predictions are returned in training mode as ``t@initial``;
:class:`tsn.losses_aux.DeepSupervisionLoss` adds their losses (the same
loss as the task's, on the upsampled prediction, weight 1) to each task's
loss, as ``PADNetLoss`` does: L_t = loss(final_t) + loss(initial_t), and
the weighting then applies the task weight to the sum.

Changes from the reference: the encoder is the project's ResNet (the
reference runs PAD-Net on HRNet-W18); the fusion's 1x1 conv outputs D
channels (reference: the sum of the input widths, which the first
Bottleneck then reduces to D) and has no bias (a BN follows);
``width`` D defaults to 4x ``model.skip_widths[1]`` (256 at the paper's
widths, the reference's value); upsampling is the project's bilinear
``align_corners=True`` resize to exact sizes, so any input size works.

Every task's initial features feed every other task's distillation, so the
network runs all initial branches on every step; ``train.sampling: all``
is the sensible strategy (under one-task sampling the other tasks' initial
predictions get no supervision that step).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tsn.errors import ConfigError
from tsn.models.base import MultiTaskModel
from tsn.models.decoders import upsample
from tsn.models.encoders import ResNetEncoder
from tsn.models.heads import TaskHeads
from tsn.models.mtl_blocks import Distillation, aux_key, bottleneck
from tsn.models.registry import MODELS, _encoder


class Tower(nn.Module):
    """A task's last blocks and its output convolution (``out_conv``: the "head" part of the parameter report)."""

    def __init__(self, body: nn.Module, width: int, out: int) -> None:
        super().__init__()
        self.body = body
        self.out_conv = nn.Conv2d(width, out, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.out_conv(self.body(x))


class PADNet(MultiTaskModel):
    def __init__(self, task_channels: dict[str, int], encoder: ResNetEncoder, heads: dict[str, TaskHeads],
                 width: int) -> None:
        super().__init__(task_channels)
        tasks, d = list(task_channels), width
        self.encoder = encoder
        self.fuse = nn.Sequential(nn.Conv2d(sum(encoder.channels[1:]), d, 1, bias=False), nn.BatchNorm2d(d),
                                  nn.ReLU(inplace=True))
        self.initial = nn.ModuleDict({t: nn.Sequential(bottleneck(d, d), bottleneck(d, d)) for t in tasks})
        self.initial_out = nn.ModuleDict({t: nn.Conv2d(d, c, 1) for t, c in task_channels.items()})
        self.distill = Distillation(tasks, d)
        self.final = nn.ModuleDict({t: Tower(nn.Sequential(bottleneck(d, d), bottleneck(d, d)), d, heads[t].width)
                                    for t in tasks})
        self.heads = nn.ModuleDict(heads)

    def forward_tasks(self, x: Tensor, tasks: list[str], code: Tensor | None = None) -> dict[str, Tensor]:
        f = self.encoder(x)[1:]
        size = f[0].shape[-2:]
        fused = self.fuse(torch.cat([upsample(v, size) for v in f], dim=1))
        feats = {t: self.initial[t](fused) for t in self.tasks}
        out: dict[str, Tensor] = {}
        for t in tasks:
            y = self.final[t](self.distill(feats, t))
            out[t] = self.heads[t](upsample(y, x.shape[-2:]), t)
        if self.training:
            for t in tasks:
                out[aux_key(t, "initial")] = self.heads[t].shift(self.initial_out[t](feats[t]), t)
        return out

    def shared_parameters(self) -> list[nn.Parameter]:
        """Encoder, fusion and the initial branches (each feeds every task's distillation)."""
        return [p for n, p in self.named_parameters()
                if n.startswith(("encoder.", "fuse.", "initial.")) and p.requires_grad]

    def gradnorm_parameters(self) -> list[nn.Parameter]:
        return [self.fuse[0].weight]


@MODELS.register("padnet")
def build_padnet(cfg, task_channels: dict[str, int], *, width: int | None = None) -> PADNet:
    d = 4 * cfg.skip_widths[1] if width is None else width
    if not isinstance(d, int) or d < 4 or d % 4:
        raise ConfigError(f"padnet width must be a positive multiple of 4 (Bottleneck blocks), got {d!r}")
    heads = {t: TaskHeads.from_config(cfg, {t: c}) for t, c in task_channels.items()}
    return PADNet(task_channels, _encoder(cfg), heads, d)


__all__ = ["PADNet", "Tower"]
