"""Inference latency and throughput of one network run three ways on this CPU:
eager PyTorch, the TorchScript export and the ONNX export under ONNX Runtime.

    python benchmarks/bench_inference.py [--run RUN_DIR] [--size 128] [--batches 1,16]
        [--threads N] [--repeats 7] [--clock wall|process] [--json PATH]

All tasks in one stacked pass (the exported graph; ``model(x)`` eagerly),
for one image and for a batch, median of ``--repeats`` timings after a
warm-up. Without ``--run`` the network is the synthetic TSN
(configs/synthetic/tsn.yaml, quarter widths, all six tasks) with random
weights: timing does not depend on the weights. Each runtime gets the same
number of threads; the outputs are checked against eager (max abs diff in
the table), so the rows compute the same thing.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def build(run: str | None):
    from tsn.runtime import tune_cpu_allocator

    tune_cpu_allocator()  # as tsn.load_run does for CPU inference
    if run:
        import tsn

        model, cfg = tsn.load_run(run)
        return model, f"{cfg.model.name} from {run}"
    from tsn.config import load_config
    from tsn.models import build_model
    from tsn.models.registry import task_channels_for

    cfg = load_config(ROOT / "configs" / "synthetic" / "tsn.yaml")
    model = build_model(cfg.model, task_channels_for(list(cfg.data.tasks), cfg.data.name)).eval()
    return model, "tsn, configs/synthetic/tsn.yaml (quarter widths), random weights"


def median_time(fn, repeats: int, min_s: float = 0.3, clock=time.perf_counter) -> float:
    """Median seconds per call; each timing repeats the call for at least ``min_s``."""
    fn()  # warm-up: oneDNN primitives, ORT's first-run allocations
    t = clock()
    fn()
    one = clock() - t
    iters = max(1, int(min_s / max(one, 1e-6)))
    out = []
    for _ in range(repeats):
        t = clock()
        for _ in range(iters):
            fn()
        out.append((clock() - t) / iters)
    return statistics.median(out)


def runtimes(model, size: int, threads: int):
    """name -> (call(x) -> {task: ndarray}, note)."""
    from tsn.export import export_model

    tasks = model.tasks

    def eager(x):
        with torch.no_grad():
            return {t: v.numpy() for t, v in model(torch.from_numpy(x)).items()}

    out = {"eager": (eager, "model(x), torch.no_grad")}
    ts = torch.jit.load(io.BytesIO(export_model(model, "torchscript", size=(size, size))))

    def script(x):
        with torch.no_grad():
            return {t: v.numpy() for t, v in ts(torch.from_numpy(x)).items()}

    out["torchscript"] = (script, "torch.jit.trace + freeze")
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime is not installed (pip install 'tsn[onnx]'): no ONNX Runtime row", file=sys.stderr)
        return out
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads must not burn CPU time
    sess = ort.InferenceSession(export_model(model, "onnx", size=(size, size), dynamic=True), opts,
                                providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    assert names == tasks, names

    def onnx(x):
        return dict(zip(names, sess.run(None, {"image": x})))

    out["onnxruntime"] = (onnx, f"onnxruntime {ort.__version__}, CPU provider, dynamic axes")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", help="a run directory or checkpoint (default: the synthetic TSN, random weights)")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batches", default="1,16")
    p.add_argument("--threads", type=int, default=None, help="threads for every runtime (default: torch's)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--clock", default="wall", choices=["wall", "process"],
                   help="wall: elapsed time; process: CPU seconds of this process (all its threads), "
                        "which a busy shared machine disturbs far less (use with --threads 1)")
    p.add_argument("--json", help="write the rows here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    model, what = build(args.run)
    rts = runtimes(model, args.size, threads)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    rng = np.random.default_rng(0)
    rows = []
    for b in [int(s) for s in args.batches.split(",")]:
        x = rng.standard_normal((b, 3, args.size, args.size)).astype(np.float32)
        ref = rts["eager"][0](x)
        for name, (fn, note) in rts.items():
            got = fn(x)
            diff = max(float(np.abs(ref[t] - got[t]).max()) for t in ref)
            s = median_time(lambda fn=fn: fn(x), args.repeats, clock=clock)
            rows.append({"runtime": name, "batch": b, "latency_ms": 1e3 * s, "images_per_s": b / s,
                         "max_abs_diff_vs_eager": diff, "note": note})
    meta = {"model": what, "tasks": model.tasks, "size": args.size, "threads": threads, "repeats": args.repeats,
            "clock": args.clock,
            "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
            "load_average_1min_at_end": os.getloadavg()[0], "cpu_count": os.cpu_count(),
            "command": "python benchmarks/bench_inference.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    print(f"{what}; {len(model.tasks)} tasks at {args.size} px, {threads} threads, median of {args.repeats} ({args.clock} clock); "
          f"load average {meta['load_average_1min_at_end']:.1f} on {meta['cpu_count']} cores")
    print("| runtime | batch | latency ms | images/s | max abs diff vs eager |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['runtime']} | {r['batch']} | {r['latency_ms']:.1f} | {r['images_per_s']:.1f} | "
              f"{r['max_abs_diff_vs_eager']:.1e} |")
    if args.json:
        from tsn.io import atomic_write_json

        atomic_write_json(args.json, {"meta": meta, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
