"""Time the BSDS-style edge evaluation on synthetic soft edge maps.

    python benchmarks/bench_edge_eval.py            # 100 maps of 320x320, 99 thresholds
    python benchmarks/bench_edge_eval.py --workers 4 --json

Ground truth: boundaries of a random Voronoi partition (like the region
boundaries of PASCAL-Context labels). Prediction: the boundaries jittered by
up to 2 px, partly dropped, blurred into soft ridges 3-6 px wide, plus blurred
noise texture, so that low thresholds give thick blobs (the expensive case
for thinning) and high ones thin fragments. Prints seconds (total and per
image) and peak memory: the peak of Python/numpy allocations during the
evaluation (tracemalloc) and the process's peak resident set size.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from scipy.spatial import cKDTree

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout


def synthetic_pair(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    n_seeds = int(rng.integers(8, 25))
    seeds = rng.random((n_seeds, 2)) * size
    yy, xx = np.mgrid[0:size, 0:size]
    _, lab = cKDTree(seeds).query(np.stack([yy.ravel(), xx.ravel()], 1))
    lab = lab.reshape(size, size)
    gt = np.zeros((size, size), bool)
    gt[:, :-1] |= lab[:, :-1] != lab[:, 1:]
    gt[:-1, :] |= lab[:-1, :] != lab[1:, :]
    shift = rng.integers(-2, 3, size=2)
    ridge = np.roll(gt, tuple(shift), axis=(0, 1)).astype(np.float64)
    ridge *= ndimage.gaussian_filter(rng.random((size, size)), 8) > 0.42  # drop some parts
    soft = ndimage.gaussian_filter(ridge, rng.uniform(1.0, 2.0))
    soft = soft / (soft.max() + 1e-9) * rng.uniform(0.7, 1.0)
    soft += 0.35 * ndimage.gaussian_filter(rng.random((size, size)), 3) ** 2
    return np.clip(soft, 1e-4, 1 - 1e-4), gt


def _rss_now_mib() -> float:
    """Current resident set size (Linux); NaN elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100, help="number of maps")
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--thresholds", type=int, default=99)
    ap.add_argument("--max-dist", type=float, default=0.0075)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--nms", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="also print one JSON line")
    args = ap.parse_args()

    from tsn.metrics import build_metric

    rng = np.random.default_rng(args.seed)
    pairs = [synthetic_pair(rng, args.size) for _ in range(args.n)]
    probs = torch.from_numpy(np.stack([p for p, _ in pairs])[:, None]).float()
    logits = torch.log(probs / (1 - probs))
    gts = torch.from_numpy(np.stack([g for _, g in pairs])[:, None].astype(np.float32))
    del pairs

    metric = build_metric(
        "edge", edge_max_dist=args.max_dist, thresholds=args.thresholds, nms=args.nms, workers=args.workers
    )
    rss_before_mb = _rss_now_mib()
    tracemalloc.start()
    t0 = time.perf_counter()
    for i in range(0, args.n, args.batch):
        metric.update(logits[i : i + args.batch], gts[i : i + args.batch])
    result = metric.compute()
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    metric.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"edge evaluation: {args.n} maps {args.size}x{args.size}, {args.thresholds} thresholds, "
          f"max_dist {args.max_dist}, nms {args.nms}, workers {args.workers}")
    print(f"  seconds      {seconds:8.2f}  ({1000 * seconds / args.n:.1f} ms / map)")
    print(f"  peak alloc   {peak / 2**20:8.1f} MiB (tracemalloc, during evaluation)")
    print(f"  peak RSS     {rss_mb:8.1f} MiB (whole process; {rss_before_mb:.1f} MiB before the evaluation)")
    print("  " + "  ".join(f"{k} {v:.3f}" for k, v in result.items()))
    if args.json:
        print(json.dumps({"n": args.n, "size": args.size, "thresholds": args.thresholds,
                          "workers": args.workers, "nms": args.nms, "seconds": seconds,
                          "peak_alloc_mib": peak / 2**20, "peak_rss_mib": rss_mb,
                          "rss_before_mib": rss_before_mb, **result}))


if __name__ == "__main__":
    main()
