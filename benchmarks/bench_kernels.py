"""tsn.nn.ops: each fast path against its reference path, in one run.

    python benchmarks/bench_kernels.py [--device cpu|cuda] [--repeats 5] [--rows ops,model] [--json PATH]
    TSN_CPU_ALLOCATOR=system python benchmarks/bench_kernels.py   # the same with glibc's default allocator

Every row times the same call twice, with ``tsn.nn.ops.fast_kernels(False)``
(the reference kernels) and with ``fast_kernels(True)`` (what the trainer
runs by default), alternating the two timings so that a shared machine
slows both alike; the ratio is reference / fast (median ms each) and
``rel diff`` the max difference of outputs and input gradients relative to
the reference's largest magnitude. Shapes are the
task-stacked shapes of a quarter-width TSN at 128 px (5 tasks x batch 16 =
80 rows; 16 rows for the single-task decoder's plain IN):
- norm: AdaIN / task-IN (``instance_norm_affine``), NCHW and channels-last;
- plain IN (``instance_norm``), NCHW and channels-last;
- upsample + concat, the gradient arriving as a channel slice (the decoder);
- the decoder's 1x1 output convolution (``conv1x1``), NCHW;
- with ``--rows model``: the whole quarter-width TSN, 128 px, 5 tasks, batch 16,
  forward + backward of the stacked pass and stacked inference, NCHW and
  channels-last (the model-level effect of the setting).
On CUDA the rows are those with a CUDA fast path (NCHW upsample and norm).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from tsn.nn import ops  # noqa: E402

CL, NCHW = torch.channels_last, torch.contiguous_format
FORMATS = (("nchw", NCHW), ("channels_last", CL))
TASKS = ["edge", "semseg", "parts", "normals", "sal"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_pair(fn, device: torch.device, repeats: int) -> tuple[float, float]:
    """Median ms of ``fn()`` under the reference and the fast kernels, timed alternately."""
    times = {False: [], True: []}  # no warm-up here: check() ran both already
    for _ in range(repeats):
        for fast in (False, True):
            with ops.fast_kernels(fast):
                _sync(device)
                t = time.perf_counter()
                fn()
                _sync(device)
                times[fast].append(time.perf_counter() - t)
    return 1e3 * statistics.median(times[False]), 1e3 * statistics.median(times[True])


def fwd_bwd(op, inputs: list[torch.Tensor], dy: torch.Tensor, skip: torch.Tensor | None = None):
    """A closure running op forward + backward; it returns the output and the input gradients."""
    def run():
        y = op(*inputs)
        out = torch.cat([y, skip], 1) if skip is not None else y
        return [y, *torch.autograd.grad(out, [t for t in inputs if t.requires_grad], dy)]

    return run


def rel_diff(ref: list[torch.Tensor], fast: list[torch.Tensor]) -> float:
    """Max over tensors of max |fast - ref| / max |ref| (a gradient summed over
    a 128x128 map is large, so absolute differences say little)."""
    return max(((a.float() - b.float()).abs().max() / a.float().abs().max().clamp(min=1e-30)).item() for a, b in zip(ref, fast))


def _row(op, shape, fmt, device, repeats, fn) -> dict:
    """Run fn once per setting (the warm-up; records the fast paths and the
    difference), then time both alternately."""
    res = {}
    with ops.fast_kernels(False):
        res[False] = fn()
    with ops.fast_kernels(True), ops.record_kernels() as seen:
        res[True] = fn()
    if isinstance(res[True], dict):
        res = {k: list(v.values()) for k, v in res.items()}
    diff = rel_diff(res[False], res[True])
    ref_ms, fast_ms = timed_pair(fn, device, repeats)
    return {"op": op, "shape": list(shape), "format": fmt, "fast_path": ",".join(sorted(seen)),
            "reference_ms": ref_ms, "fast_ms": fast_ms, "ratio": ref_ms / fast_ms, "max_rel_diff": diff}


def op_rows(device: torch.device, repeats: int) -> list[dict]:
    cuda = device.type == "cuda"
    rows = []
    rnd = lambda *s, fmt=NCHW, grad=True: torch.randn(*s, device=device).contiguous(memory_format=fmt).requires_grad_(grad)  # noqa: E731
    formats = FORMATS[:1] if cuda else FORMATS
    for shape in [(80, 16, 128, 128), (80, 32, 64, 64), (80, 64, 32, 32)]:
        n, c = shape[:2]
        for fname, fmt in formats:
            x, g, b = rnd(*shape, fmt=fmt), rnd(n, c), rnd(n, c)
            fn = fwd_bwd(ops.instance_norm_affine, [x, g, b], rnd(*shape, fmt=fmt, grad=False))
            rows.append(_row("norm (AdaIN) f+b", shape, fname, device, repeats, fn))
    if not cuda:
        for shape in [(16, 16, 128, 128), (16, 64, 32, 32)]:
            c = shape[1]
            for fname, fmt in formats:
                x, w, b = rnd(*shape, fmt=fmt), rnd(c), rnd(c)
                fn = fwd_bwd(ops.instance_norm, [x, w, b], rnd(*shape, fmt=fmt, grad=False))
                rows.append(_row("plain IN f+b", shape, fname, device, repeats, fn))
    for n, c, h, skip_c in [(80, 64, 32, 16), (80, 64, 16, 16), (80, 128, 8, 32)]:
        size = (2 * h, 2 * h)
        fmt, fname = (NCHW, "nchw") if cuda else (CL, "channels_last")
        x = rnd(n, c, h, h, fmt=fmt)
        skip = rnd(n, skip_c, *size, fmt=fmt, grad=False)
        fn = fwd_bwd(lambda t: ops.upsample(t, size), [x], rnd(n, c + skip_c, *size, fmt=fmt, grad=False), skip)
        rows.append(_row("cat(up(x),skip) f+b", (n, c, h, h), fname, device, repeats, fn))
    if not cuda:
        shape = (80, 16, 128, 128)
        x, w, b = rnd(*shape), rnd(10, 16, 1, 1), rnd(10)
        fn = fwd_bwd(ops.conv1x1, [x, w, b], rnd(80, 10, 128, 128, grad=False))
        rows.append(_row("conv1x1 16->10 f+b", shape, "nchw", device, repeats, fn))
    return rows


def model_rows(device: torch.device, repeats: int, size: int = 128, batch: int = 16) -> list[dict]:
    from tsn.config import load_config
    from tsn.models import build_model
    from tsn.models.registry import task_channels_for

    cfg = load_config(ROOT / "configs/synthetic/base.yaml", ["model.pretrained=false"])
    rows = []
    for fname, fmt in FORMATS:
        torch.manual_seed(0)
        model = build_model(cfg.model, task_channels_for(TASKS, "synthetic")).to(device).to(memory_format=fmt)
        x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=fmt)

        def train_step():
            model.zero_grad(set_to_none=True)
            out = model(x, tasks=TASKS)
            sum(v.square().mean() for v in out.values()).backward()
            return out

        def infer():
            with torch.no_grad():
                return model(x, tasks=TASKS)

        for name, fn in (("TSN train f+b", train_step), ("TSN infer (c)", infer)):
            r = _row(name, (batch, 3, size, size), fname, device, repeats, fn)
            r["reference_img_s"], r["fast_img_s"] = 1e3 * batch / r["reference_ms"], 1e3 * batch / r["fast_ms"]
            rows.append(r)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rows", default="ops", help="comma-separated: ops (each fast path), model (the whole quarter TSN, 128 px)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from tsn.errors import ConfigError
    from tsn.runtime import tune_cpu_allocator

    makers = {"ops": op_rows, "model": model_rows}
    kinds = [k.strip() for k in args.rows.split(",") if k.strip()]
    if not kinds or any(k not in makers for k in kinds):
        print(f"error: --rows {args.rows!r}: use a comma-separated subset of {', '.join(makers)}", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but CUDA is not available", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    try:
        allocator = "tuned" if tune_cpu_allocator() else "system"
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"{where}, torch {torch.__version__}, allocator {allocator}, median of {args.repeats} (reference and fast alternating)")
    print(f"{'op':<22}{'shape':<20}{'format':<15}{'fast path':<44}{'reference ms':>13}{'fast ms':>10}{'ratio':>7}{'rel diff':>9}")
    rows = []
    for make in (makers[k] for k in kinds):
        for r in make(device, args.repeats):
            rows.append(r)
            print(f"{r['op']:<22}{str(r['shape']):<20}{r['format']:<15}{r['fast_path']:<44}{r['reference_ms']:>13.1f}"
                  f"{r['fast_ms']:>10.1f}{r['ratio']:>7.2f}{r['max_rel_diff']:>9.1e}", flush=True)
    if args.json:
        meta = {"device": where, "torch": torch.__version__, "allocator": allocator, "repeats": args.repeats,
                "load_avg_1min_at_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
                "command": " ".join(["python benchmarks/bench_kernels.py", *(argv if argv is not None else sys.argv[1:])])}
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
