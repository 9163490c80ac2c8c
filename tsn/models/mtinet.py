"""MTI-Net (Vandenhende, Georgoulis & Van Gool, ECCV 2020), as in
Multi-Task-Learning-PyTorch (``models/mti_net.py``, ``MTINetLoss``).

The four backbone scales are the encoder's layer1..layer4 (H/4 .. H/32;
the reference's HRNet-W18 branches sit at the same four resolutions). From
the coarsest scale down, per scale s and task t:

- initial prediction: two BasicBlocks refine [B_s, up(P_{s+1,t})] (only B_s
  at s = 3) to task features F_{s,t} of width w_s; a 1x1 conv predicts t;
- feature propagation (scales 3, 2, 1): the concatenated task features
  pass a BasicBlock-BasicBlock-conv bottleneck f; a softmax across tasks of
  f's output weights the concatenation; a BasicBlock reduces it to w_s and
  a per-task squeeze-and-excitation adds it back, P_{s,t} = SE_t(.) + F_{s,t};
- multi-modal distillation at every scale (PAD-Net's, on F_{s,t});
- feature aggregation: the distilled features of the four scales,
  upsampled to H/4 and concatenated, pass a 1x1 conv-BN-ReLU and the task's
  output convolution (the reference's HRNet head), upsampled to the input
  size and through the task's head (the project's ``TaskHeads``).

The initial predictions of every scale are returned in training mode as
``t@scale0`` .. ``t@scale3`` and :class:`tsn.losses_aux.DeepSupervisionLoss`
adds their losses (weight 1, on the upsampled predictions) to each task's
loss, as ``MTINetLoss`` does.

Changes from the reference: the project's ResNet instead of HRNet; the
task widths w_s default to a quarter of ``model.skip_widths[1:]`` (16, 32,
64, 128 at the paper's widths, next to HRNet-W18's 18, 36, 72, 144; the full
ResNet widths would put 125M parameters in the distillation alone at five
tasks), settable with the ``widths`` option; the propagation's softmax runs
across tasks over the [B, T, w, H, W] view of the task-major concatenation
(the reference code views it as [B, w, T, H, W], which groups T adjacent
channels); squeeze-and-excitation keeps at least one hidden unit (narrow
widths); upsampling is the project's ``align_corners=True`` resize to exact
sizes (the reference doubles), so any input size works.

All tasks' initial branches and propagations run on every step, so
``train.sampling: all`` is the sensible strategy.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from tsn.errors import ConfigError
from tsn.models.base import MultiTaskModel
from tsn.models.decoders import upsample
from tsn.models.encoders import ResNetEncoder
from tsn.models.heads import TaskHeads
from tsn.models.mtl_blocks import Distillation, SEBlock, aux_key, basic_block
from tsn.models.padnet import Tower
from tsn.models.registry import MODELS, _encoder


class InitialPrediction(nn.Module):
    def __init__(self, tasks: dict[str, int], cin: int, width: int) -> None:
        super().__init__()
        self.refine = nn.ModuleDict({t: nn.Sequential(basic_block(cin, width), basic_block(width, width)) for t in tasks})
        self.pred = nn.ModuleDict({t: nn.Conv2d(width, c, 1) for t, c in tasks.items()})


class FPM(nn.Module):
    """Feature propagation module: shared, task-attended, reduced, added back per task."""

    def __init__(self, tasks: list[str], width: int) -> None:
        super().__init__()
        n = len(tasks)
        shared, hidden = n * width, max(1, n * width // 4)
        self.n, self.width = n, width
        self.non_linear = nn.Sequential(basic_block(shared, hidden), basic_block(hidden, hidden), nn.Conv2d(hidden, shared, 1))
        self.reduce = basic_block(shared, width)
        self.se = nn.ModuleDict({t: SEBlock(width) for t in tasks})

    def forward(self, feats: dict[str, Tensor]) -> dict[str, Tensor]:
        cat = torch.cat(list(feats.values()), dim=1)
        b, _, h, w = cat.shape
        mask = torch.softmax(self.non_linear(cat).reshape(b, self.n, self.width, h, w), dim=1)
        shared = self.reduce((mask * cat.reshape(b, self.n, self.width, h, w)).reshape(b, -1, h, w))
        return {t: self.se[t](shared) + f for t, f in feats.items()}


class MTINet(MultiTaskModel):
    def __init__(self, task_channels: dict[str, int], encoder: ResNetEncoder, heads: dict[str, TaskHeads],
                 widths: Sequence[int]) -> None:
        super().__init__(task_channels)
        tasks, c, w = list(task_channels), encoder.channels[1:], list(widths)
        self.encoder = encoder
        self.initial = nn.ModuleList(
            InitialPrediction(task_channels, c[s] + (w[s + 1] if s < 3 else 0), w[s]) for s in range(4))
        self.fpm = nn.ModuleList(FPM(tasks, w[s]) for s in range(1, 4))  # fpm[s - 1] at scale s
        self.distill = nn.ModuleList(Distillation(tasks, w[s]) for s in range(4))
        total = sum(w)
        self.aggregate = nn.ModuleDict({
            t: Tower(nn.Sequential(nn.Conv2d(total, total, 1), nn.BatchNorm2d(total), nn.ReLU(inplace=True)),
                     total, heads[t].width) for t in tasks})
        self.heads = nn.ModuleDict(heads)

    def forward_tasks(self, x: Tensor, tasks: list[str], code: Tensor | None = None) -> dict[str, Tensor]:
        f = self.encoder(x)[1:]
        feats: list[dict[str, Tensor]] = [{}, {}, {}, {}]
        prop: dict[str, Tensor] | None = None
        for s in (3, 2, 1, 0):
            mod = self.initial[s]
            for t in self.tasks:
                inp = f[s] if prop is None else torch.cat([f[s], upsample(prop[t], f[s].shape[-2:])], dim=1)
                feats[s][t] = mod.refine[t](inp)
            prop = self.fpm[s - 1](feats[s]) if s > 0 else None
        size = f[0].shape[-2:]
        out: dict[str, Tensor] = {}
        for t in tasks:
            multi = [upsample(self.distill[s](feats[s], t), size) for s in range(4)]
            y = self.aggregate[t](torch.cat(multi, dim=1))
            out[t] = self.heads[t](upsample(y, x.shape[-2:]), t)
        if self.training:
            for t in tasks:
                for s in range(4):
                    out[aux_key(t, f"scale{s}")] = self.heads[t].shift(self.initial[s].pred[t](feats[s][t]), t)
        return out

    def shared_parameters(self) -> list[nn.Parameter]:
        """Encoder, initial branches and propagation modules (each feeds every task)."""
        return [p for n, p in self.named_parameters()
                if n.startswith(("encoder.", "initial.", "fpm.")) and p.requires_grad and ".pred." not in n]


@MODELS.register("mtinet")
def build_mtinet(cfg, task_channels: dict[str, int], *, widths: list[int] | None = None) -> MTINet:
    w = [max(1, v // 4) for v in cfg.skip_widths[1:]] if widths is None else list(widths)
    if len(w) != 4 or not all(isinstance(v, int) and v >= 1 for v in w):
        raise ConfigError(f"mtinet widths must be 4 positive integers (scales H/4 .. H/32), got {widths!r}")
    heads = {t: TaskHeads.from_config(cfg, {t: c}) for t, c in task_channels.items()}
    return MTINet(task_channels, _encoder(cfg), heads, w)


__all__ = ["FPM", "MTINet"]
