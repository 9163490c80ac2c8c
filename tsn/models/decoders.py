"""The U-Net decoder of the release, with a pluggable normalisation.

With ``norm="adain"`` it is TSN's conditional decoder (10 A modules); with
``task_in``/``task_bn`` it is the task-specific-normalisation baseline; with
``in`` it is the plain decoder of the single-task and multi-decoder
baselines. The recursion is O_5 = A(F_5), O_j = A([up(O_{j+1}), A(F_j)]).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tsn.errors import ConfigError
from tsn.nn.blocks import CondConv
from tsn.nn.condition import Condition
from tsn.runtime import cpu_allocator_tuned

PAPER_SKIP_WIDTHS = (64, 64, 128, 256, 512)
PAPER_UP_WIDTHS = (512, 256, 256, 128, 64)


def _lerp_axis(x: Tensor, dim: int, n_out: int) -> Tensor:
    """1-D linear resize (align_corners=True) of ``x`` along ``dim``."""
    n_in = x.shape[dim]
    scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32  # the native kernel's accumulate type
    src = torch.arange(n_out, device=x.device, dtype=acc) * scale
    i0 = src.floor().long().clamp_(max=n_in - 1)
    i1 = (i0 + 1).clamp_(max=n_in - 1)
    f = (src - i0).to(x.dtype)
    if dim == x.dim() - 2:
        f = f[:, None]
    return x.index_select(dim, i0) * (1 - f) + x.index_select(dim, i1) * f


class _ChannelsLastGrad(torch.autograd.Function):
    """Identity whose backward hands on a channels-last gradient. Behind the
    decoder's concatenation the gradient of an upsampled map is a channel
    slice of a channels-last tensor; the CPU upsampling backward copies such
    a slice to NCHW and runs its NCHW kernel ([80, 64, 64, 64] -> 32x32:
    67 ms), where a channels-last copy and the channels-last kernel take 20."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return x

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad.contiguous(memory_format=torch.channels_last)


def upsample(x: Tensor, size: Sequence[int]) -> Tensor:
    """Bilinear resize with align_corners=True as in the release; resizing to
    the skip's exact size (not x2) makes any input size work.

    On CUDA an NCHW map is resized separably (width, then height: gathers and
    lerps, the same arithmetic): the native NCHW kernel runs one thread per
    output pixel looping over N*C, and was measured at ~60% of the stacked
    decoder's GPU time (N*C is large: tasks x batch x channels)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if x.is_cuda and x.is_contiguous():
        return _lerp_axis(_lerp_axis(x, x.dim() - 1, size[1]), x.dim() - 2, size[0])
    n, c, h, w = x.shape
    if x.device.type == "cpu" and x.requires_grad and x.is_contiguous(memory_format=torch.channels_last):
        return _ChannelsLastGrad.apply(F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True))
    if (x.device.type == "cpu" and not cpu_allocator_tuned() and x.is_contiguous()
            and n * c >= 4096 and h * w >= 256):
        # With glibc's default allocator, viewing every (row, channel) plane as its own
        # image (the same result to 5e-7) took the stacked pass at quarter widths, 128 px
        # from 18-19 to 24-25 img/s; the kernel alone is no faster, the gain is in how
        # glibc reuses blocks across the pass. With the tuned allocator (tsn/runtime.py)
        # the pass is faster without it, so it is not used there.
        return F.interpolate(x.view(n * c, 1, h, w), size=tuple(size), mode="bilinear",
                             align_corners=True).view(n, c, *size)
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


def pointwise_conv(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """A 1x1 convolution. On a contiguous (NCHW) CPU map it runs as one batched
    GEMM, weight [Co, Ci] @ x [N, Ci, H*W]: oneDNN's NCHW path for a 1x1 conv
    with few channels was measured 3x slower (forward + backward) on the
    decoder's full-resolution output. Elsewhere (CUDA, channels-last) the
    convolution kernels are already fast, so the conv itself runs."""
    if x.device.type != "cpu" or not x.is_contiguous() or x.dtype != conv.weight.dtype:
        return conv(x)
    n, c, h, w = x.shape
    weight = conv.weight.view(conv.out_channels, c).expand(n, -1, -1)
    if conv.bias is None:
        return torch.bmm(weight, x.view(n, c, h * w)).view(n, -1, h, w)
    return torch.baddbmm(conv.bias.view(1, -1, 1), weight, x.view(n, c, h * w)).view(n, -1, h, w)


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
        return pointwise_conv(self.out_conv, x)
