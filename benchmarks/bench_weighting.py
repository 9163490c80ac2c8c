"""What gradient balancing costs per training step, against fixed weighting.

    python benchmarks/bench_weighting.py [--device auto] [--width quarter] [--model tsn]
        [--size 64] [--batch 16] [--tasks 6] [--methods fixed,upgrad,mgda,pcgrad,cagrad,nash_mtl,imtl_g]
        [--rounds 7] [--channels-last] [--json PATH]

One ``all``-strategy step as the trainer runs it (every task on a real
synthetic batch, the real losses and the config's static weights, then the
weighting's backward and Adam), for every method on its own copy of the
same model. Rounds are interleaved (each round times one step of every
method, in a rotated order), so a slower or faster moment of a shared
machine hits every method alike; the reported time is each method's median
over the rounds and the ratio is that median over fixed weighting's median
from the same run. Peak memory is measured on one further step per method:
the CUDA allocator's peak, or on CPU the peak of tensor storage created
during the step (bench_throughput's counter), above what was live before.

The gradient methods differentiate every task's loss separately with
respect to the shared parameters (torchjd's Jacobian: T rows) and solve a
small problem on the T x T Gramian; on CPU, where the decoder has no vmap
rule, the T rows are T backward passes.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402

import bench_throughput as bt  # noqa: E402

METHODS = ["fixed", "upgrad", "mgda", "pcgrad", "cagrad", "nash_mtl", "imtl_g"]


def make_step(model, cfg, method: str, batch: dict, tasks: list[str], device: torch.device, amp: bool):
    from tsn.engine.optim import build_optimizer
    from tsn.losses import MultiTaskLoss
    from tsn.weighting import build_weighting

    crit = MultiTaskLoss(tasks, cfg.loss.options)
    static = {t: float(cfg.loss.weights.get(t, 1.0)) for t in tasks}
    weighting = build_weighting(method, tasks, static).to(device)
    opt = build_optimizer(cfg.optim, model)
    model.train()

    def step() -> None:
        with bt.autocast(device, amp):
            preds = model(batch["image"], tasks=tasks)
        losses = crit({t: p.float() for t, p in preds.items()}, {t: batch[t] for t in tasks})
        opt.zero_grad(set_to_none=True)
        weighting.backward(losses, model)  # the trainer's call (fixed: the weighted sum, then backward)
        opt.step()

    return step


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--width", default="quarter", choices=list(bt.WIDTHS))
    p.add_argument("--model", default="tsn")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--tasks", type=int, default=6)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--amp", action="store_true")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    methods = args.methods.split(",")
    if methods[0] != "fixed":
        methods = ["fixed"] + [m for m in methods if m != "fixed"]
    tasks = bt.ALL_TASKS[: args.tasks]
    torch.manual_seed(0)
    model, cfg = bt.build(args.width, args.model, tasks, device, args.channels_last, False)
    batch = bt.batch_for(args.size, args.batch, tasks, device, args.channels_last)
    steps = {m: make_step(copy.deepcopy(model), cfg, m, batch, tasks, device, args.amp) for m in methods}
    for m in methods:  # warm-up: allocator, solvers' set-up, the one-time vmap fallback on CPU
        steps[m]()
        steps[m]()
    times: dict[str, list[float]] = {m: [] for m in methods}
    for r in range(args.rounds):
        order = methods[r % len(methods):] + methods[: r % len(methods)]
        for m in order:
            bt.sync(device)
            t = time.perf_counter()
            steps[m]()
            bt.sync(device)
            times[m].append(time.perf_counter() - t)
    peaks = {}
    for m in methods:
        with bt.PeakMemory(device) as mem:
            steps[m]()
        peaks[m] = mem.peak
    base_t, base_m = statistics.median(times["fixed"]), peaks["fixed"]
    rows = [{"method": m, "step_ms": 1e3 * statistics.median(times[m]),
             "time_ratio": statistics.median(times[m]) / base_t,
             "peak_mem_mb": peaks[m] / 2**20, "mem_ratio": peaks[m] / base_m if base_m else float("nan"),
             "step_ms_all": [1e3 * v for v in times[m]]} for m in methods]
    meta = {"device": str(device), "width": args.width, "model": args.model, "size": args.size, "batch": args.batch,
            "tasks": tasks, "rounds": args.rounds, "threads": torch.get_num_threads(), "amp": args.amp,
            "channels_last": args.channels_last, "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}
    print(f"{args.model} ({args.width}) {args.size}px batch {args.batch}, {len(tasks)} tasks, {device}, "
          f"median of {args.rounds} interleaved rounds")
    print("| method | step ms | x fixed | peak MB | x fixed |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['step_ms']:.1f} | {r['time_ratio']:.2f} | {r['peak_mem_mb']:.0f} | {r['mem_ratio']:.2f} |")
    if args.json:
        from tsn.io import atomic_write_text

        atomic_write_text(Path(args.json), json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
