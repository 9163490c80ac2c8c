"""The decoder's CPU kernel paths against the alternatives they replaced.

    python benchmarks/bench_kernels.py [--repeats 5] [--json PATH]
    TSN_CPU_ALLOCATOR=system python benchmarks/bench_kernels.py   # the same with glibc's default allocator

Rows (median ms of forward + backward on task-stacked shapes of a
quarter-width TSN at 128 px, 5 tasks x batch 16 = 80 rows):
- norm: AdaIN's instance norm + per-row affine on an NCHW map (fused fold) and
  on a channels-last map, two kernels (group_norm + addcmul) against the fold
  through an NCHW copy (what ``instance_norm_affine`` does);
- upsample + concat on a channels-last map: the upsampling backward given
  the gradient as the concat hands it over (a channel slice) against
  ``upsample``'s channels-last gradient.
Each pair is checked to give the same values.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

CL = torch.channels_last


def timed(fn, repeats: int) -> float:
    fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return 1e3 * statistics.median(ts)


def norm_rows(repeats: int) -> list[dict]:
    from tsn.nn.norms import instance_norm_affine

    rows = []
    for shape in [(80, 16, 128, 128), (80, 32, 64, 64), (80, 64, 32, 32)]:
        n, c = shape[:2]
        g, b = torch.randn(n, c, requires_grad=True), torch.randn(n, c, requires_grad=True)
        for fmt_name, fmt in (("nchw", torch.contiguous_format), ("channels_last", CL)):
            x = torch.randn(shape).contiguous(memory_format=fmt).requires_grad_()
            dy = torch.randn(shape).contiguous(memory_format=fmt)
            two = lambda: torch.addcmul(b[:, :, None, None], F.group_norm(x, c), g[:, :, None, None])  # noqa: E731
            ours = lambda: instance_norm_affine(x, g, b)  # noqa: E731
            diff = (two() - ours()).abs().max().item()
            rows.append({"op": "norm fwd+bwd", "shape": list(shape), "format": fmt_name,
                         "before": "group_norm + addcmul", "before_ms": timed(lambda: two().backward(dy), repeats),
                         "after": "instance_norm_affine", "after_ms": timed(lambda: ours().backward(dy), repeats),
                         "max_diff": diff})
    return rows


def upsample_grad_rows(repeats: int) -> list[dict]:
    from tsn.models.decoders import upsample

    rows = []
    for n, c, h, skip_c in [(80, 64, 32, 16), (80, 64, 16, 16), (80, 128, 8, 32)]:
        x = torch.randn(n, c, h, h).contiguous(memory_format=CL).requires_grad_()
        skip = torch.randn(n, skip_c, 2 * h, 2 * h).contiguous(memory_format=CL)
        size = (2 * h, 2 * h)
        dy = torch.randn(n, c + skip_c, 2 * h, 2 * h).contiguous(memory_format=CL)
        plain = lambda: torch.cat([F.interpolate(x, size=size, mode="bilinear", align_corners=True), skip], 1)  # noqa: E731
        ours = lambda: torch.cat([upsample(x, size), skip], 1)  # noqa: E731
        grads = [torch.autograd.grad(f(), x, dy)[0] for f in (plain, ours)]
        rows.append({"op": "cat(up(x),skip) f+b", "shape": [n, c, h, h], "format": "channels_last",
                     "before": "native gradient (a channel slice)",
                     "before_ms": timed(lambda: torch.autograd.grad(plain(), x, dy), repeats),
                     "after": "upsample (channels-last gradient)",
                     "after_ms": timed(lambda: torch.autograd.grad(ours(), x, dy), repeats),
                     "max_diff": (grads[0] - grads[1]).abs().max().item()})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from tsn.errors import ConfigError
    from tsn.runtime import tune_cpu_allocator

    try:
        allocator = "tuned" if tune_cpu_allocator() else "system"
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"cpu, {torch.get_num_threads()} threads, torch {torch.__version__}, allocator {allocator}, "
          f"median of {args.repeats}")
    print(f"{'op':<22}{'shape':<20}{'format':<15}{'before':>44}{'after':>44}{'ratio':>7}{'diff':>9}")
    rows = []
    for make in (norm_rows, upsample_grad_rows):
        for r in make(args.repeats):
            rows.append(r)
            before, after = f"{r['before']} {r['before_ms']:.1f} ms", f"{r['after']} {r['after_ms']:.1f} ms"
            print(f"{r['op']:<22}{str(r['shape']):<20}{r['format']:<15}{before:>44}{after:>44}"
                  f"{r['before_ms'] / r['after_ms']:>7.2f}{r['max_diff']:>9.1e}", flush=True)
    if args.json:
        meta = {"threads": torch.get_num_threads(), "torch": torch.__version__, "allocator": allocator,
                "repeats": args.repeats, "command": " ".join(["bench_kernels.py", *(argv if argv is not None else sys.argv[1:])])}
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
