"""The U-Net decoder of the release, with a pluggable normalisation.

With ``norm="adain"`` it is TSN's conditional decoder (10 A modules); with
``task_in``/``task_bn`` it is the task-specific-normalisation baseline; with
``in`` it is the plain decoder of the single-task and multi-decoder
baselines. The recursion is O_5 = A(F_5), O_j = A([up(O_{j+1}), A(F_j)]).
Its resize and 1x1 convolution are ``tsn.nn.ops``'s (reference or fast
paths by the explicit ``set_fast_kernels`` setting).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from tsn.errors import ConfigError
from tsn.nn.blocks import CondConv
from tsn.nn.condition import Condition
from tsn.nn.ops import conv1x1, upsample

PAPER_SKIP_WIDTHS = (64, 64, 128, 256, 512)
PAPER_UP_WIDTHS = (512, 256, 256, 128, 64)


class UNetDecoder(nn.Module):
    def __init__(
        self,
        enc_channels: Sequence[int],
        out_channels: int,
        norm: str,
        n_tasks: int = 1,
        skip_widths: Sequence[int] = PAPER_SKIP_WIDTHS,
        up_widths: Sequence[int] = PAPER_UP_WIDTHS,
        act: str = "leaky_relu",
        **norm_opts: object,
    ) -> None:
        super().__init__()
        if len(enc_channels) != 5 or len(skip_widths) != 5 or len(up_widths) != 5:
            raise ConfigError("the U-Net decoder needs 5 encoder levels, 5 skip widths and 5 up widths")
        mk = lambda cin, cout, k: CondConv(cin, cout, k, norm, n_tasks, act, **norm_opts)  # noqa: E731
        self.skips = nn.ModuleList(mk(c, w, 1) for c, w in zip(enc_channels, skip_widths))
        ups, prev = [], skip_widths[4]
        for j in (3, 2, 1, 0):  # levels H/16 .. H/2
            ups.append(mk(prev + skip_widths[j], up_widths[3 - j], 3))
            prev = up_widths[3 - j]
        self.ups = nn.ModuleList(ups)
        self.final = mk(prev, up_widths[4], 3)  # at full resolution
        self.out_conv = nn.Conv2d(up_widths[4], out_channels, 1)  # shared, unconditioned

    def forward(self, feats: list[Tensor], cond: Condition, out_size: Sequence[int], repeat: int = 1) -> Tensor:
        """``feats`` hold B rows; the output holds ``repeat * B`` rows in
        ``cond``'s task-major order (the skips' convolutions run once)."""
        s = [blk(f, cond, repeat) for blk, f in zip(self.skips, feats)]
        x = s[4]
        for blk, skip in zip(self.ups, (s[3], s[2], s[1], s[0])):
            x = blk(torch.cat([upsample(x, skip.shape[-2:]), skip], dim=1), cond)
        x = self.final(upsample(x, out_size), cond)
        return conv1x1(x, self.out_conv.weight, self.out_conv.bias)
