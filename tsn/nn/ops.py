"""The decoder's tensor operations: a reference path and the measured fast paths.

Every operation here has a reference implementation (the plain PyTorch call
that defines it) and, where one was measured faster, fast paths beside it
that compute the same values and gradients to float tolerance
(``tests/test_kernels.py``). Which runs is decided by ONE explicit setting and
the input tensor itself (device, memory format, dtype), never by process
state such as the CPU allocator: a model used from a notebook runs the same
kernels as the trainer under the same setting.

    tsn.nn.ops.set_fast_kernels(False)        # reference kernels from now on
    with tsn.nn.ops.fast_kernels(False): ...  # only inside the block, then restored
    tsn.nn.ops.fast_kernels_enabled()         # True by default

The trainer applies its config's ``train.fast_kernels`` (default true, the
speed measured in docs/PERFORMANCE.md) with :func:`set_fast_kernels` and logs
it, as it does ``train.deterministic``. ``record_kernels()`` collects which
path each call took ("op:path"), to compare two programs or to benchmark.

Fast paths, where they apply (what each gains, measured with ``benchmarks/bench_kernels.py``:
docs/PERFORMANCE.md, "Kernels" and "Changes and their measured effect"):

- ``upsample:separable`` (CUDA, NCHW): width then height by gathers and lerps;
  the native NCHW kernel loops over N*C per thread.
- ``upsample:channels_last_grad`` (CPU, channels-last): the backward hands on a
  channels-last gradient instead of the channel slice the decoder's concat
  gives, which the native backward copies to NCHW first.
- ``instance_norm_affine:fold`` (CPU any format, CUDA NCHW): rows folded into
  channels, [N, C, H, W] -> [1, N*C, H, W], one group_norm kernel with the
  affine fused (channels-last through an NCHW copy and back).
- ``instance_norm:fold`` (CPU, channels-last): the same for a per-channel
  affine (plain IN); on NCHW group_norm with the affine is as fast.
- ``conv1x1:bmm`` (CPU, NCHW): one batched GEMM, where oneDNN's NCHW 1x1 conv
  with few channels is slow (forward + backward).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor

_fast = True
_seen: list[Counter] = []  # active record_kernels() collectors (innermost last)


def set_fast_kernels(enable: bool) -> None:
    """Use the measured fast paths (True, the default) or the reference ones."""
    global _fast
    if not isinstance(enable, bool):
        raise TypeError(f"set_fast_kernels expects True or False, got {enable!r}")
    _fast = enable


def fast_kernels_enabled() -> bool:
    return _fast


@contextmanager
def fast_kernels(enable: bool = True) -> Iterator[None]:
    """The setting inside the block only; the previous one is restored after."""
    before = _fast
    set_fast_kernels(enable)
    try:
        yield
    finally:
        set_fast_kernels(before)


@contextmanager
def record_kernels() -> Iterator[Counter]:
    """Count the paths taken inside the block, as ``"op:path"`` -> calls."""
    seen: Counter = Counter()
    _seen.append(seen)
    try:
        yield seen
    finally:
        _seen.remove(seen)


def _took(op: str, path: str) -> None:
    for seen in _seen:
        seen[f"{op}:{path}"] += 1


# ------------------------------------------------------------------ resize

def upsample_reference(x: Tensor, size: Sequence[int]) -> Tensor:
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


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


def upsample_separable(x: Tensor, size: Sequence[int]) -> Tensor:
    return _lerp_axis(_lerp_axis(x, x.dim() - 1, size[1]), x.dim() - 2, size[0])


class _ChannelsLastGrad(torch.autograd.Function):
    """Identity whose backward hands on a channels-last gradient. Behind the
    decoder's concatenation the gradient of an upsampled map is a channel
    slice of a channels-last tensor; the CPU upsampling backward copies such
    a slice to NCHW and runs its NCHW kernel, slower than a channels-last copy
    and the channels-last kernel (docs/PERFORMANCE.md)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return x

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad.contiguous(memory_format=torch.channels_last)


def upsample_channels_last_grad(x: Tensor, size: Sequence[int]) -> Tensor:
    return _ChannelsLastGrad.apply(upsample_reference(x, size))


def upsample(x: Tensor, size: Sequence[int]) -> Tensor:
    """Bilinear resize with align_corners=True as in the release; resizing to
    the skip's exact size (not x2) makes any input size work."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if _fast:
        if x.is_cuda and x.is_contiguous():
            _took("upsample", "separable")
            return upsample_separable(x, size)
        if x.device.type == "cpu" and x.requires_grad and x.is_contiguous(memory_format=torch.channels_last):
            _took("upsample", "channels_last_grad")
            return upsample_channels_last_grad(x, size)
    _took("upsample", "reference")
    return upsample_reference(x, size)


# ------------------------------------------------------------------ instance norm

def _constant_norm(x: Tensor, beta: Tensor) -> Tensor:
    """IN of a 1x1 map is 0, so the output is beta (group_norm refuses one
    value per group for a batch of one)."""
    n, c = x.shape[:2]
    return beta.reshape(n, c, 1, 1).expand_as(x) + 0 * x


def instance_norm_affine_reference(x: Tensor, gamma: Tensor, beta: Tensor, eps: float = 1e-5) -> Tensor:
    """``gamma * IN(x) + beta`` with ``gamma``/``beta`` of shape [N, C]."""
    if x.shape[-1] * x.shape[-2] == 1:
        return _constant_norm(x, beta)
    return torch.addcmul(beta[:, :, None, None], F.group_norm(x, x.shape[1], eps=eps), gamma[:, :, None, None])


def instance_norm_affine_fold(x: Tensor, gamma: Tensor, beta: Tensor, eps: float = 1e-5) -> Tensor:
    """One group_norm over [1, N*C, H, W] with the per-row affine fused; a
    channels-last map goes through an NCHW copy and comes back channels-last
    (the next convolution expects it)."""
    n, c, h, w = x.shape
    if h * w == 1:
        return _constant_norm(x, beta)
    y = F.group_norm(x.contiguous().view(1, n * c, h, w), n * c, gamma.reshape(-1), beta.reshape(-1), eps).view(n, c, h, w)
    if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return y
    return y.contiguous(memory_format=torch.channels_last)


def instance_norm_affine(x: Tensor, gamma: Tensor, beta: Tensor, eps: float = 1e-5) -> Tensor:
    """Instance norm, then a per-row, per-channel affine (AdaIN, task-IN).
    On CUDA a channels-last map keeps the reference (the fold's copies are
    unmeasured there)."""
    if _fast and (x.is_contiguous() or not x.is_cuda):
        _took("instance_norm_affine", "fold")
        return instance_norm_affine_fold(x, gamma, beta, eps)
    _took("instance_norm_affine", "reference")
    return instance_norm_affine_reference(x, gamma, beta, eps)


def instance_norm_reference(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    """= ``nn.InstanceNorm2d(C, affine=True)`` (no running statistics)."""
    if x.shape[-1] * x.shape[-2] == 1:
        return _constant_norm(x, bias.expand(x.shape[0], -1))
    return F.group_norm(x, x.shape[1], weight, bias, eps)


def instance_norm_fold(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    n = x.shape[0]
    return instance_norm_affine_fold(x, weight.expand(n, -1), bias.expand(n, -1), eps)


def instance_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    """Instance norm with a per-channel affine (the plain decoders). The fold
    only for a channels-last CPU map: on an NCHW map group_norm with the affine
    is already one kernel and measured as fast, and CUDA keeps group_norm, the
    path measured there (docs/PERFORMANCE.md, "Kernels")."""
    if _fast and x.device.type == "cpu" and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        _took("instance_norm", "fold")
        return instance_norm_fold(x, weight, bias, eps)
    _took("instance_norm", "reference")
    return instance_norm_reference(x, weight, bias, eps)


# ------------------------------------------------------------------ 1x1 convolution

def conv1x1_reference(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    return F.conv2d(x, weight, bias)


def conv1x1_bmm(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """weight [Co, Ci] @ x [N, Ci, H*W] as one batched GEMM."""
    n, c, h, w = x.shape
    wt = weight.view(weight.shape[0], c).expand(n, -1, -1)
    if bias is None:
        return torch.bmm(wt, x.view(n, c, h * w)).view(n, -1, h, w)
    return torch.baddbmm(bias.view(1, -1, 1), wt, x.view(n, c, h * w)).view(n, -1, h, w)


def conv1x1(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """A 1x1 convolution (weight [Co, Ci, 1, 1]). On CUDA and channels-last
    maps the convolution kernels are already fast, so the conv runs there."""
    if _fast and x.device.type == "cpu" and x.is_contiguous() and x.dtype == weight.dtype:
        _took("conv1x1", "bmm")
        return conv1x1_bmm(x, weight, bias)
    _took("conv1x1", "reference")
    return conv1x1_reference(x, weight, bias)


__all__ = [
    "conv1x1", "fast_kernels", "fast_kernels_enabled", "instance_norm", "instance_norm_affine",
    "record_kernels", "set_fast_kernels", "upsample",
]
