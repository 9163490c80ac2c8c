"""Export a trained network to TorchScript or ONNX: one graph that takes an
image batch ``[N, 3, H, W]`` (ImageNet-normalised, as the datasets give it)
and returns one raw output per task, named by task, with the stacked
decoder (every task decoded in one pass, as in evaluation).

The eager model picks its fastest CPU kernels by Python branches on shapes
and memory formats (a GEMM for 1x1 convolutions, instance norm folded into
one ``group_norm`` of ``N*C`` groups, per-plane upsampling), and builds the
stacked condition with Python integers of the batch size. Exporters record
one path through such code and keep the integers as constants, and ONNX's
GroupNormalization needs a constant group count. So the graph is traced
through :class:`ExportGraph`, which builds the stacked condition from the
traced batch size, and under :func:`export_mode`, which swaps those kernels
for the plain operations they are equal to (same results to float rounding;
tests/test_export.py compares against eager PyTorch).

Dynamic axes: ONNX with ``dynamic``: batch, height and width, for every
model kind (``task_bn``'s per-task row blocks are sliced by the traced batch
size too); without it the example's shape is fixed. TorchScript traces
record shapes symbolically, so its graphs take any batch and size either
way. A user-supplied code (``--code``) is not part of the graph: it is a
per-call input the exported graph does not take.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tsn.errors import ConfigError, TSNError

FORMATS = ("onnx", "torchscript")
ONNX_OPSET = 18


class ExportError(TSNError):
    """A model cannot be exported as asked."""


def _instance_norm_affine(x: Tensor, gamma: Tensor, beta: Tensor, eps: float = 1e-5) -> Tensor:
    """``gamma * IN(x) + beta`` from means and variances (no N*C-group group_norm)."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True)
    return (x - mean) * torch.rsqrt(var + eps) * gamma[:, :, None, None] + beta[:, :, None, None]


def _instance_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    """``nn.InstanceNorm2d(affine=True)`` the same way, without the reference's
    branch on a 1x1 map (a trace would freeze it at the traced size)."""
    n = x.shape[0]
    return _instance_norm_affine(x, weight.expand(n, -1), bias.expand(n, -1), eps)


@contextlib.contextmanager
def export_mode() -> Iterator[None]:
    """Within: the reference kernels (``tsn.nn.ops.fast_kernels(False)``), with the
    affine instance norm written as means and variances, which every exporter
    and ONNX Runtime accept (no N*C-group ``group_norm``)."""
    from tsn.nn import ops

    saved = ops.instance_norm_affine_reference, ops.instance_norm_reference
    ops.instance_norm_affine_reference = _instance_norm_affine
    ops.instance_norm_reference = _instance_norm
    try:
        with ops.fast_kernels(False):
            yield
    finally:
        ops.instance_norm_affine_reference, ops.instance_norm_reference = saved


def _condition(task_indices: list[int], x: Tensor, latents: Tensor | None = None):
    """:meth:`Condition.stacked` with the batch size taken from ``x``'s traced shape."""
    from tsn.nn.condition import Condition

    b, t = x.shape[0], len(task_indices)
    ids = torch.tensor(task_indices, device=x.device)[:, None].expand(t, b).reshape(-1)
    blocks = [(k, slice(i * b, (i + 1) * b)) for i, k in enumerate(task_indices)]
    if latents is not None:
        latents = latents[:, None, :].expand(t, b, latents.shape[-1]).reshape(t * b, latents.shape[-1])
    return Condition(ids, blocks, latents)


def _unstack(y: Tensor, n_tasks: int) -> tuple[Tensor, ...]:
    return y.reshape(n_tasks, -1, *y.shape[1:]).unbind(0)


class ExportGraph(nn.Module):
    """``forward(image)``: the raw outputs (logits; normals unnormalised; depth
    in the dataset's unit) as a tuple in the order of ``tasks`` (ONNX names
    them), or a dict keyed by task (``as_dict``, for TorchScript)."""

    KINDS = ("TaskSwitchingNet", "TaskNormNet", "MultiDecoderNet", "SingleTaskNet", "RCMNet")

    def __init__(self, model: nn.Module, tasks: Sequence[str] | None = None, as_dict: bool = False) -> None:
        super().__init__()
        kind = type(model).__name__
        if kind not in self.KINDS:
            raise ExportError(f"cannot export a {kind}: the exporter traces {', '.join(self.KINDS)}")
        tasks = list(model.tasks if tasks is None else tasks)
        bad = [t for t in tasks if t not in model.task_channels]
        if bad or not tasks:
            raise ConfigError(f"the model has no task {', '.join(bad) or '(none asked)'}; it has {', '.join(model.tasks)}")
        self.model, self.kind, self.tasks, self.as_dict = model, kind, tasks, as_dict
        self.index = [model.tasks.index(t) for t in tasks]

    def forward(self, x: Tensor):
        m, n = self.model, len(self.tasks)
        if self.kind in ("TaskSwitchingNet", "TaskNormNet"):
            latents = m.latents(self.tasks) if self.kind == "TaskSwitchingNet" else None
            y = m.decoder(m.encoder(x), _condition(self.index, x, latents), x.shape[-2:], repeat=n)
            out = {t: m.heads(yt, t) for yt, t in zip(_unstack(y, n), self.tasks)}
        else:
            out = m.forward_tasks(x, self.tasks)  # per-task decoders: one row block each, nothing stacked
        return {t: out[t] for t in self.tasks} if self.as_dict else tuple(out[t] for t in self.tasks)


def _patch_single_condition():
    """The per-task-decoder models build a one-task condition with Condition.stacked."""
    import tsn.models.baselines as base

    saved = base._single
    base._single = lambda x: _condition([0], x)
    return lambda: setattr(base, "_single", saved)


@contextlib.contextmanager
def _tracing() -> Iterator[None]:
    restore = _patch_single_condition()
    try:
        with export_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings about Python values that are constants by design
            yield
    finally:
        restore()


def export_model(model: nn.Module, fmt: str, tasks: Sequence[str] | None = None, size: tuple[int, int] = (128, 128),
                 dynamic: bool = True, batch: int = 2) -> bytes:
    """The exported graph as bytes (written by the caller, atomically).
    ``size`` and ``batch`` shape the example input it is traced with; with
    ``dynamic`` the graph accepts any batch and spatial size."""
    if fmt not in FORMATS:
        raise ConfigError(f"export format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    from tsn.inference import parse_size

    size = parse_size(size)
    graph = ExportGraph(model, tasks, as_dict=fmt == "torchscript").eval()
    device = next(model.parameters()).device
    x = torch.zeros(batch, 3, *size, device=device)
    buf = io.BytesIO()
    try:
        with _tracing(), torch.no_grad():
            if fmt == "torchscript":
                # tracing records shapes symbolically: the graph takes any batch and size either way
                traced = torch.jit.freeze(torch.jit.trace(graph, x, check_trace=False, strict=False).eval())
                torch.jit.save(traced, buf)
            else:
                _export_onnx(graph, x, buf, dynamic)
    except TSNError:
        raise
    except Exception as e:  # noqa: BLE001 - any tracing failure is reported as one line
        first = next((s for s in str(e).splitlines() if s.strip()), type(e).__name__)
        raise ExportError(f"cannot export this {graph.kind} to {fmt}: {type(e).__name__}: {first[:300]}") from None
    return buf.getvalue()


def _export_onnx(graph: ExportGraph, x: Tensor, buf: io.BytesIO, dynamic: bool) -> None:
    try:
        import onnx  # noqa: F401 - the exporter needs it
    except ImportError:
        raise ExportError("ONNX export needs the onnx package: pip install 'tsn[onnx]'") from None
    axes = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.export(
        graph, (x,), buf, dynamo=False, opset_version=ONNX_OPSET, input_names=["image"], output_names=list(graph.tasks),
        dynamic_axes={"image": axes, **{t: axes for t in graph.tasks}} if dynamic else None, do_constant_folding=True,
    )


__all__ = ["ExportError", "ExportGraph", "FORMATS", "export_mode", "export_model"]
