"""tsn/nn/ops.py: every fast path equals its reference, the explicit setting
chooses, and a notebook runs the trainer's kernels under the same setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tsn.nn import ops

ROOT = Path(__file__).resolve().parents[1]
NCHW, CL = torch.contiguous_format, torch.channels_last
FORMATS = pytest.mark.parametrize("fmt", [NCHW, CL], ids=["nchw", "channels_last"])
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(autouse=True)
def _restore_setting():
    before = ops.fast_kernels_enabled()
    yield
    ops.set_fast_kernels(before)


def _grads(fn, inputs: list[torch.Tensor], fmt, dy_channels: int | None = None, seed: int = 1):
    """fn's output and the gradients of all inputs for a fixed output gradient.
    ``dy_channels``: the output is concatenated with a skip of that many
    channels first, so the gradient arrives as a channel slice (the decoder)."""
    xs = [t.detach().clone(memory_format=fmt if t.dim() == 4 else torch.preserve_format).requires_grad_() for t in inputs]
    y = fn(*xs)
    out = y
    if dy_channels:
        skip = torch.randn(y.shape[0], dy_channels, *y.shape[2:], dtype=y.dtype, device=y.device).contiguous(memory_format=fmt)
        out = torch.cat([y, skip], 1)
    g = torch.Generator(device=y.device).manual_seed(seed)
    dy = torch.randn(out.shape, generator=g, dtype=y.dtype, device=y.device).contiguous(memory_format=fmt)
    grads = torch.autograd.grad(out, xs, dy, allow_unused=True)  # gamma of a 1x1 map: unused, zero
    return y, [torch.zeros_like(x) if g is None else g for x, g in zip(xs, grads)]


def _assert_same(fast, ref, fmt=None, atol=2e-5):
    (yf, gf), (yr, gr) = fast, ref
    if fmt is not None:
        assert yf.is_contiguous(memory_format=fmt)  # the next convolution gets the format it was given
    torch.testing.assert_close(yf, yr, atol=atol, rtol=1e-5)
    for a, b in zip(gf, gr):
        torch.testing.assert_close(a, b, atol=atol, rtol=1e-5)


# ---------------------------------------------------------------- fast == reference

SIZES = [((3, 5, 7, 9), (13, 17)), ((2, 4, 4, 4), (8, 8)), ((2, 3, 9, 11), (4, 5)), ((1, 2, 5, 3), (1, 1)), ((2, 3, 1, 1), (3, 5))]


@pytest.mark.parametrize("shape,size", SIZES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_separable_upsample_equals_interpolate(shape, size, dtype):
    """The CUDA path's arithmetic, checked on the CPU (it is device-agnostic):
    odd sizes, down-sizing and a single output pixel included."""
    x = torch.randn(shape, dtype=dtype)
    _assert_same(_grads(lambda t: ops.upsample_separable(t, size), [x], NCHW),
                 _grads(lambda t: ops.upsample_reference(t, size), [x], NCHW), atol=1e-5 if dtype == torch.float32 else 1e-12)


@FORMATS
@pytest.mark.parametrize("shape,size", SIZES[:3])
def test_channels_last_gradient_upsample_equals_interpolate(shape, size, fmt):
    """Behind a concat (the gradient is a channel slice) as in the decoder."""
    x = torch.randn(shape)
    fast = _grads(lambda t: ops.upsample_channels_last_grad(t, size), [x], fmt, dy_channels=3)
    assert fast[1][0].is_contiguous(memory_format=CL)  # what the path is for
    _assert_same(fast, _grads(lambda t: ops.upsample_reference(t, size), [x], NCHW, dy_channels=3))


NORM_SHAPES = [(6, 5, 7, 9), (3, 4, 1, 1), (1, 3, 1, 1), (2, 3, 1, 5), (1, 7, 16, 16)]


@FORMATS
@pytest.mark.parametrize("shape", NORM_SHAPES)
def test_folded_instance_norm_affine_equals_group_norm_then_affine(shape, fmt):
    n, c = shape[:2]
    x, g, b = torch.randn(shape), torch.randn(n, c), torch.randn(n, c)
    fast = _grads(ops.instance_norm_affine_fold, [x, g, b], fmt)
    _assert_same(fast, _grads(ops.instance_norm_affine_reference, [x, g, b], NCHW), fmt=fmt)


@FORMATS
@pytest.mark.parametrize("shape", NORM_SHAPES)
def test_folded_instance_norm_equals_instance_norm2d(shape, fmt):
    c = shape[1]
    x, w, b = torch.randn(shape), torch.randn(c), torch.randn(c)
    fast = _grads(lambda *t: ops.instance_norm(*t), [x, w, b], fmt)
    ref = _grads(ops.instance_norm_reference, [x, w, b], NCHW)
    _assert_same(fast, ref, fmt=fmt)
    if shape[-1] * shape[-2] > 1:  # the reference is nn.InstanceNorm2d(affine=True)
        m = torch.nn.InstanceNorm2d(c, affine=True)
        with torch.no_grad():
            m.weight.copy_(w), m.bias.copy_(b)
        torch.testing.assert_close(ref[0], m(x), atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", [(3, 5, 7, 9), (1, 16, 13, 1), (4, 1, 2, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_bmm_conv1x1_equals_conv2d(shape, bias):
    x, w, b = torch.randn(shape), torch.randn(6, shape[1], 1, 1), torch.randn(6)
    args = [x, w, b] if bias else [x, w]
    _assert_same(_grads(ops.conv1x1_bmm, args, NCHW), _grads(ops.conv1x1_reference, args, NCHW))


@CUDA
@FORMATS
def test_cuda_fast_paths_equal_reference(fmt):
    x, g, b = torch.randn(3, 5, 7, 9, device="cuda"), torch.randn(3, 5, device="cuda"), torch.randn(3, 5, device="cuda")
    for fast_on in (True, False):
        with ops.fast_kernels(fast_on):
            got = [_grads(lambda t: ops.upsample(t, (13, 17)), [x], fmt), _grads(ops.instance_norm_affine, [x, g, b], fmt)]
        if fast_on:
            fast = got
        else:
            ref = got
    for a, r in zip(fast, ref):
        _assert_same(a, r)


# ---------------------------------------------------------------- the setting


def _paths(fn) -> set[str]:
    with ops.record_kernels() as seen:
        fn()
    return set(seen)


def test_the_setting_picks_the_paths_on_cpu():
    """Which path each op takes follows the setting and the input alone."""
    x = torch.randn(2, 3, 5, 7)
    xcl = x.contiguous(memory_format=CL).requires_grad_()
    g, w = torch.randn(2, 3), torch.randn(4, 3, 1, 1)

    def calls():
        ops.upsample(x, (9, 13)), ops.upsample(xcl, (9, 13)), ops.upsample(x, (5, 7))  # the last: no resize at all
        ops.instance_norm_affine(x, g, g), ops.instance_norm(xcl, g[0], g[0]), ops.conv1x1(x, w), ops.conv1x1(xcl, w)

    assert ops.fast_kernels_enabled() is True  # the default
    assert _paths(calls) == {"upsample:reference", "upsample:channels_last_grad", "instance_norm_affine:fold",
                             "instance_norm:fold", "conv1x1:bmm", "conv1x1:reference"}
    ops.set_fast_kernels(False)
    assert _paths(calls) == {"upsample:reference", "instance_norm_affine:reference", "instance_norm:reference",
                             "conv1x1:reference"}


def test_context_manager_restores_even_on_error_and_nests():
    ops.set_fast_kernels(True)
    with ops.fast_kernels(False):
        assert not ops.fast_kernels_enabled()
        with ops.fast_kernels(True):
            assert ops.fast_kernels_enabled()
        assert not ops.fast_kernels_enabled()
    assert ops.fast_kernels_enabled()
    with pytest.raises(RuntimeError), ops.fast_kernels(False):
        raise RuntimeError("inside")
    assert ops.fast_kernels_enabled()
    with pytest.raises(TypeError, match="True or False"):
        ops.set_fast_kernels("no")
    assert ops.fast_kernels_enabled()


@FORMATS
def test_whole_model_is_the_same_with_fast_and_reference_kernels(fmt):
    """A TSN forward + backward, stacked over three tasks: outputs and every
    parameter's gradient agree. In float64, because ten instance norms in
    a row amplify float32 rounding in the first layer's gradient (~1e-3
    relative) beyond any tolerance that would still catch a wrong path."""
    from test_pipeline import tiny
    from tsn.config import load_config
    from tsn.models import build_model

    cfg = load_config(data=tiny())
    model = build_model(cfg.model, {"edge": 1, "semseg": 5, "normals": 3}).double().to(memory_format=fmt)
    x = torch.randn(2, 3, 33, 31, dtype=torch.float64).contiguous(memory_format=fmt)

    def run(fast: bool):
        model.zero_grad()
        with ops.fast_kernels(fast):
            out = model(x, tasks=["edge", "semseg", "normals"])
            sum((v * torch.linspace(-1, 1, v.numel(), dtype=v.dtype).view_as(v)).sum() for v in out.values()).backward()
        return out, {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}

    (of, gf), (orf, gr) = run(True), run(False)
    for t in of:
        torch.testing.assert_close(of[t], orf[t], atol=1e-10, rtol=1e-9)
    assert gf.keys() == gr.keys() and len(gf) > 0
    for k in gf:
        torch.testing.assert_close(gf[k], gr[k], atol=1e-9, rtol=1e-7)


def test_trainer_applies_and_logs_the_config_setting(tmp_path):
    from test_pipeline import tiny
    from tsn.config import load_config
    from tsn.engine.trainer import Trainer

    cfg = load_config(data=tiny(), overrides=["train.fast_kernels=false"])
    with ops.record_kernels() as seen:
        Trainer(cfg, tmp_path, quiet=True).fit()
    assert not ops.fast_kernels_enabled()
    assert seen and all(k.endswith(":reference") for k in seen)
    assert "fast_kernels=False" in (tmp_path / "log.txt").read_text()


# A "notebook": the model built and run by hand, the CPU allocator left as glibc
# has it; then the trainer (which tunes the allocator) on the same config.
# Prints the paths each took, per (setting, memory format).
NOTEBOOK_THEN_TRAINER = r"""
import json, sys, torch
sys.path.insert(0, sys.argv[1] + "/tests")
from test_pipeline import tiny
from tsn.config import load_config
from tsn.engine.trainer import Trainer
from tsn.models import build_model
from tsn.models.registry import task_channels_for
from tsn.nn import ops
from tsn.runtime import cpu_allocator_tuned

cases = [(f, cl) for f in (True, False) for cl in (True, False)]
cfgs = {c: load_config(data=tiny(), overrides=[f"train.fast_kernels={str(c[0]).lower()}", f"train.channels_last={str(c[1]).lower()}"]) for c in cases}
out = {"allocator_tuned_in_notebook": cpu_allocator_tuned()}
for (fast, cl), cfg in cfgs.items():
    fmt = torch.channels_last if cl else torch.contiguous_format
    model = build_model(cfg.model, task_channels_for(cfg.data.tasks, cfg.data.name)).to(memory_format=fmt)
    x = torch.randn(4, 3, cfg.data.size, cfg.data.size).contiguous(memory_format=fmt)
    with ops.fast_kernels(fast), ops.record_kernels() as seen:
        sum(p.square().mean() for p in model(x, tasks=list(cfg.data.tasks)).values()).backward()
        with torch.no_grad():
            model(x, tasks=list(cfg.data.tasks))
    out[f"notebook {fast} {cl}"] = sorted(seen)
for (fast, cl), cfg in cfgs.items():
    with ops.record_kernels() as seen:
        Trainer(cfg, None, quiet=True).fit()
    out[f"trainer {fast} {cl}"] = sorted(seen)
out["allocator_tuned_in_trainer"] = cpu_allocator_tuned()
print(json.dumps(out))
"""


def test_notebook_runs_the_trainers_kernels_whatever_the_allocator():
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "TSN_CPU_ALLOCATOR": "tuned"}
    res = subprocess.run([sys.executable, "-c", NOTEBOOK_THEN_TRAINER, str(ROOT)], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.splitlines()[-1])
    assert out.pop("allocator_tuned_in_notebook") is False
    tuned = out.pop("allocator_tuned_in_trainer")
    for fast in (True, False):
        for cl in (True, False):
            assert out[f"notebook {fast} {cl}"] == out[f"trainer {fast} {cl}"], (fast, cl)
            assert all(k.endswith(":reference") for k in out[f"trainer {fast} {cl}"]) is (not fast)
    assert "upsample:channels_last_grad" in out["trainer True True"] and "conv1x1:bmm" in out["trainer True False"]
    assert tuned in (True, False)  # glibc: True; elsewhere the allocator is left alone
