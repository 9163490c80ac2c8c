"""Time the edge evaluation on synthetic soft edge maps.

    python benchmarks/bench_edge_eval.py            # fast preset: 100 maps of 320x320, 99 thresholds
    python benchmarks/bench_edge_eval.py --workers 4 --json
    python benchmarks/bench_edge_eval.py --protocol seism --shape 375x500 --n 30   # the paper's protocol
    python benchmarks/bench_edge_eval.py --check-seism SEISM_CHECKOUT   # summaries vs SEISM's results

With ``--protocol seism|bsds`` each map is first written as the 8-bit PNG the
release stores, and every map is timed on its own (one image through
``image_counts``: NMS, every threshold, thinning, matching); the median per
map is printed. ``--check-seism`` recomputes odsF / oisF / AP from the
per-image count files a SEISM checkout ships (``results/<db>/<method>/*_fb_*.txt``)
and prints them beside SEISM's own ``results/pr_curves`` numbers.

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


def synthetic_pair(rng: np.random.Generator, size) -> tuple[np.ndarray, np.ndarray]:
    h, w = (size, size) if np.isscalar(size) else size
    n_seeds = int(rng.integers(8, 25) * max(1.0, h * w / 320**2))
    seeds = rng.random((n_seeds, 2)) * [h, w]
    yy, xx = np.mgrid[0:h, 0:w]
    _, lab = cKDTree(seeds).query(np.stack([yy.ravel(), xx.ravel()], 1))
    lab = lab.reshape(h, w)
    gt = np.zeros((h, w), bool)
    gt[:, :-1] |= lab[:, :-1] != lab[:, 1:]
    gt[:-1, :] |= lab[:-1, :] != lab[1:, :]
    shift = rng.integers(-2, 3, size=2)
    ridge = np.roll(gt, tuple(shift), axis=(0, 1)).astype(np.float64)
    ridge *= ndimage.gaussian_filter(rng.random((h, w)), 8) > 0.42  # drop some parts
    soft = ndimage.gaussian_filter(ridge, rng.uniform(1.0, 2.0))
    soft = soft / (soft.max() + 1e-9) * rng.uniform(0.7, 1.0)
    soft += 0.35 * ndimage.gaussian_filter(rng.random((h, w)), 3) ** 2
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
    ap.add_argument("--shape", default=None, help="HxW instead of --size (e.g. 375x500, a PASCAL image)")
    ap.add_argument("--protocol", default="fast", choices=["fast", "seism", "bsds"])
    ap.add_argument("--check-seism", metavar="SEISM_DIR", help="check the summaries against a SEISM checkout")
    ap.add_argument("--thresholds", default=None, help="N or 'hed' (default: the protocol's)")
    ap.add_argument("--max-dist", type=float, default=0.0075)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--nms", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="also print one JSON line")
    args = ap.parse_args()
    if args.check_seism:
        return check_seism(Path(args.check_seism))
    if args.protocol != "fast":
        return time_protocol(args)
    args.thresholds = int(args.thresholds or 99)

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


def time_protocol(args) -> None:
    """Median seconds per map of one image through the protocol (one process)."""
    from tsn.metrics import build_metric
    from tsn.metrics import edge_protocols as EP

    shape = tuple(int(v) for v in args.shape.lower().split("x")) if args.shape else (args.size, args.size)
    rng = np.random.default_rng(args.seed)
    pairs = []
    for _ in range(args.n):
        soft, gt = synthetic_pair(rng, shape)
        pairs.append((EP.to_uint8(soft), gt))  # the release's PNG value
    metric = build_metric("edge", protocol=args.protocol, thresholds=args.thresholds, edge_max_dist=args.max_dist)
    protocol = EP.get_protocol(args.protocol)
    protocol.image_counts(pairs[0][0], pairs[0][1], metric.thresholds, max_dist=args.max_dist)  # compile
    times, cpu, counts = [], [], []
    for png, gt in pairs:
        t0, c0 = time.perf_counter(), time.process_time()
        counts.append(protocol.image_counts(png, gt, metric.thresholds, max_dist=args.max_dist))
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    metric.add_image_counts(counts)
    result = metric.compute()
    med, med_cpu = float(np.median(times)), float(np.median(cpu))
    print(f"edge evaluation, protocol {args.protocol}: {args.n} maps {shape[0]}x{shape[1]}, "
          f"{len(metric.thresholds)} thresholds, max_dist {args.max_dist}, one process")
    print(f"  per map      median {med:.3f} s wall (min {min(times):.3f}, max {max(times):.3f}), "
          f"median {med_cpu:.3f} s CPU time of this process")
    print(f"  PASCAL val   5105 maps x median = {5105 * med / 60:.1f} min wall, {5105 * med_cpu / 60:.1f} min CPU "
          "in one process")
    print("  " + "  ".join(f"{k} {v:.3f}" for k, v in result.items()))
    if args.json:
        print(json.dumps({"protocol": args.protocol, "n": args.n, "shape": list(shape),
                          "thresholds": len(metric.thresholds), "median_s": med, "median_cpu_s": med_cpu, "min_s": min(times),
                          "max_s": max(times), **result}))


def check_seism(root: Path) -> None:
    """odsF / oisF / AP from a SEISM checkout's per-image count files, beside SEISM's own numbers."""
    from tsn.metrics import edge_protocols as EP

    params = (root / "parameters" / "HED.txt").read_text().split()
    for curves in sorted((root / "results" / "pr_curves").glob("*/*_fb_*_ods_f.txt")):
        db = curves.parent.name
        stem = curves.name[len(db) + 1 : -len("_ods_f.txt")]  # <gt_set>_fb_<method>
        gt_set, method = stem.split("_fb_")
        files = [root / "results" / db / method / f"{gt_set}_fb_{p}.txt" for p in params]
        if not all(f.is_file() for f in files):
            continue
        per = np.stack([np.loadtxt(f, ndmin=2) for f in files], 1)  # [images, T, F P R cntR sumR cntP sumP]
        counts = per[:, :, 3:7].astype(np.int64)
        seism = EP.get_protocol("seism")
        ois = sum(seism.ois(c) for c in counts)
        ours = seism.summarize(np.array([float(p) for p in params]), counts.sum(0), ois)
        ref = {k: float((curves.parent / f"{db}_{stem}_{k}.txt").read_text().split()[0]) for k in ("ods_f", "ois_f", "ap")}
        print(f"{db:14s} {method:14s} {counts.shape[0]:5d} images  ours odsF {ours['odsF']:.4f} oisF {ours['oisF']:.4f} "
              f"AP {ours['AP']:.4f}   SEISM {ref['ods_f']:.3f} {ref['ois_f']:.3f} {ref['ap']:.3f}")


if __name__ == "__main__":
    main()
