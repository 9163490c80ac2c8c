"""The Berkeley benchmark's own result files for gPb-owt-ucm, reproduced without MATLAB.

    python benchmarks/bsds_bench_repro.py BSDS500_DIR [--workers 2]

``BSDS500_DIR`` holds ``ucm2/test/*.mat``, ``ucm2/test_eval/eval_bdry*.txt`` and
``data/groundTruth/test/*.mat`` (the BSDS500 release, e.g. BIDS/BSDS500's ``BSDS500/``). Scores
the 200 hierarchies with the ``bsds`` protocol (99 thresholds, max_dist 0.0075, every annotator)
and prints, beside the bench's files: ODS / OIS / AP (``eval_bdry.txt``), each image's best
(T, R, P, F) (``eval_bdry_img.txt``) and the split-wide R / P per threshold (``eval_bdry_thr.txt``),
with the time the evaluation took. docs/METRICS.md quotes its output.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from tsn.metrics.boundary import recall_precision
from tsn.metrics.edge_io import evaluate_folder, image_rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    ev = args.root / "ucm2" / "test_eval"
    t0 = time.perf_counter()
    res = evaluate_folder(args.root / "ucm2" / "test", args.root / "data" / "groundTruth" / "test", "bsds",
                          workers=args.workers)
    seconds = time.perf_counter() - t0
    bench = np.loadtxt(ev / "eval_bdry.txt")  # T R P F(ODS) R P F(OIS) AP
    print(f"{res['images']} images, {res['thresholds']} thresholds, {seconds:.1f} s with {args.workers} workers")
    print("        ours     bench    ours - bench")
    for name, key, k in (("ODS", "odsF", 3), ("OIS", "oisF", 6), ("AP", "AP", 7)):
        print(f"{name:5s} {res[key] / 100:.4f}   {bench[k]:.4f}   {res[key] / 100 - bench[k]:+.4f}")
    ours = np.array([r[1:] for r in image_rows(res)])
    theirs = np.loadtxt(ev / "eval_bdry_img.txt")[:, 1:]  # index, T, R, P, F (rows in the same id order)
    d = ours - theirs
    same_t = np.abs(d[:, 0]) < 1e-4
    print(f"per image (best T, R, P, F): same best threshold {same_t.sum()} / {len(d)}; |F diff| max {np.abs(d[:, 3]).max():.4f}, "
          f"mean {d[:, 3].mean():+.5f}, > 0.001: {(np.abs(d[:, 3]) > 1e-3).sum()}, > 0.005: {(np.abs(d[:, 3]) > 5e-3).sum()}")
    print(f"  at the same best threshold: R diff min {d[same_t, 1].min():+.5f} max {d[same_t, 1].max():+.5f}; "
          f"P diff min {d[same_t, 2].min():+.5f} max {d[same_t, 2].max():+.5f}")
    R, P = recall_precision(res["counts"])
    thr = np.loadtxt(ev / "eval_bdry_thr.txt")  # T R P F
    dr, dp = R - thr[:, 1], P - thr[:, 2]
    print(f"split-wide per threshold: R diff min {dr.min():+.5f} max {dr.max():+.5f}; P diff min {dp.min():+.5f} "
          f"max {dp.max():+.5f}")
    worst = np.argsort(dp)[:3]
    print("  largest P gaps at t = " + ", ".join(f"{thr[k, 0]:.2f} ({dp[k]:+.4f}, bench P {thr[k, 2]:.3f})" for k in worst))
    print(json.dumps({"seconds": seconds, "workers": args.workers, "ods": res["odsF"] / 100, "ois": res["oisF"] / 100,
                      "ap": res["AP"] / 100, "bench": bench.tolist()}))


if __name__ == "__main__":
    main()
