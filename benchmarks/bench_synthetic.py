"""Scenes per second of the embedded generator on ONE CPU core.

    python benchmarks/bench_synthetic.py [--n 300] [--size 128] [--json out.json]

Rows: the bare render (numpy arrays, all six tasks), a dataset sample
(tensors, normalised image), and an augmented training sample. Generation
must never be the bottleneck of training: the target is >= 100 scenes/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _rate(fn, n: int) -> float:
    fn(0)  # warm-up (imports, caches)
    t = time.perf_counter()
    for i in range(1, n + 1):
        fn(i)
    return n / (time.perf_counter() - t)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="scenes per row")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import torch

    torch.set_num_threads(1)
    from tsn.data import build_dataset
    from tsn.data.synthetic import scene_arrays

    size = (args.size, args.size)
    plain = build_dataset("synthetic", split="train", size=size, length=args.n + 1)
    aug = build_dataset("synthetic", split="train", size=size, length=args.n + 1, augment=True)
    rows = {
        "render (numpy, 6 tasks)": _rate(lambda i: scene_arrays(0, "train", i, size), args.n),
        "dataset sample (tensors)": _rate(lambda i: plain[i], args.n),
        "augmented training sample": _rate(lambda i: aug[i], args.n),
    }
    print(f"synthetic generator, {args.size}x{args.size}, 1 core ({platform.processor() or platform.machine()})")
    print(f"{'what':<28} {'scenes/s':>9}")
    for k, v in rows.items():
        print(f"{k:<28} {v:>9.1f}")
    ok = rows["dataset sample (tensors)"] >= 100
    print("target >= 100 scenes/s:", "met" if ok else "NOT met")
    if args.json:
        Path(args.json).write_text(json.dumps({"size": args.size, "n": args.n, "scenes_per_s": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
