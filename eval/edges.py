"""``python -m eval edges PRED_DIR --gt GT_DIR``: odsF / oisF / AP of a folder of edge maps, no MATLAB.

    python -m eval edges PRED_DIR --gt GT_DIR --protocol seism|bsds [--max-dist F]
                         [--thresholds N|hed] [--workers N] [--json]

``PRED_DIR/<id>.png``: 8-bit grayscale soft edge maps of any method (as the
TSN release and HED / RCF write them). Ground truth, per id, the first of:
``GT_DIR/<id>.mat`` holding a BSDS500 ``groundTruth`` cell (one
``Segmentation`` / ``Boundaries`` per annotator), SEISM's ``gt_seg`` cell of
segmentations (its BSDS500 copy; Boundaries = ``seg2bmap``) or a
PASCAL-Context ``LabelMap``; ``GT_DIR/<id>.png``, binary boundaries (non-zero = boundary,
e.g. NYUD's edge maps). What each protocol makes of them:

- ``seism`` (the TSN paper, ASTMT, ATRC, InvPT): every segmentation (a
  ``LabelMap`` or each annotator's ``Segmentation``) becomes
  ``thin(seg2bmap(seg))``; a binary PNG is thinned; predictions get SEISM's
  NMS, ``> t`` at the 101 HED thresholds.
- ``bsds`` (the BSDS500 bench): each annotator's ``Boundaries`` as given (a
  ``LabelMap``: ``seg2bmap``; a PNG: as given); ``>= t`` at 99 thresholds,
  no NMS.

Every id of PRED_DIR is evaluated and needs a ground truth (extra ground-truth
files are ignored, so GT_DIR may hold the whole dataset). The tolerance is
``max_dist`` x the image's diagonal (default 0.0075; NYUD: 0.011).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from tsn.errors import DataError, TSNError
from tsn.metrics.boundary import seg2bmap
from tsn.metrics.edge_protocols import PROTOCOLS, EdgeProtocol, get_protocol


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("edges", help="odsF / oisF / AP of a folder of 8-bit edge PNGs (SEISM or BSDS protocol)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pred_dir", help="folder of <id>.png soft edge maps (8-bit grayscale)")
    p.add_argument("--gt", required=True, metavar="GT_DIR", help="folder of <id>.mat (groundTruth / LabelMap) or <id>.png")
    p.add_argument("--protocol", default="seism", choices=PROTOCOLS.names())
    p.add_argument("--max-dist", type=float, default=0.0075, help="tolerance / image diagonal (0.0075; NYUD 0.011)")
    p.add_argument("--thresholds", default=None, help="N evenly spaced ones or 'hed' (default: seism hed, bsds 99)")
    p.add_argument("--workers", type=int, default=0, help="processes (0: this one)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=main)


# ---------------------------------------------------------------- reading


def read_prediction(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            mode = im.mode
            a = np.array(im)
    except Exception as e:  # noqa: BLE001  (PIL raises many kinds)
        raise DataError(f"{path}: cannot read the prediction ({type(e).__name__}: {e})") from None
    if mode != "L" or a.dtype != np.uint8 or a.ndim != 2:
        raise DataError(f"{path}: expected an 8-bit grayscale PNG (mode L), got mode {mode} {a.dtype} {a.shape}")
    return a


def _segmentations_or_boundaries(path: Path) -> tuple[str, list[np.ndarray]]:
    """("labels", [seg]) for a LabelMap, ("bsds", [(seg, bdry), ...]) for a groundTruth cell."""
    import scipy.io

    try:
        m = scipy.io.loadmat(path)
    except NotImplementedError:
        raise DataError(f"{path}: MATLAB v7.3 (HDF5) .mat files are not read; save it with -v7") from None
    except Exception as e:  # noqa: BLE001
        raise DataError(f"{path}: cannot read the .mat file ({type(e).__name__}: {e})") from None
    if "groundTruth" in m:
        cell = np.asarray(m["groundTruth"]).ravel()
        out = []
        try:
            for el in cell:
                el = el.ravel()[0] if isinstance(el, np.ndarray) and el.dtype == object else el
                rec = el.ravel()[0] if isinstance(el, np.ndarray) else el
                names = rec.dtype.names or ()
                seg = np.asarray(rec["Segmentation"]) if "Segmentation" in names else None
                bdry = np.asarray(rec["Boundaries"]) if "Boundaries" in names else None
                if seg is None and bdry is None:
                    raise KeyError
                out.append((seg, bdry))
        except (KeyError, IndexError, TypeError, ValueError):
            raise DataError(f"{path}: groundTruth is not a cell of structs with Segmentation / Boundaries") from None
        if not out:
            raise DataError(f"{path}: groundTruth holds no annotator")
        return "bsds", out
    if "gt_seg" in m:  # SEISM's own copy of BSDS500: a cell of segmentations, one per annotator
        segs = [np.asarray(x) for x in np.asarray(m["gt_seg"], dtype=object).ravel()]
        if not segs or any(x.ndim != 2 for x in segs):
            raise DataError(f"{path}: gt_seg is not a cell of 2-D segmentations")
        return "bsds", [(x, seg2bmap(x)) for x in segs]
    if "LabelMap" in m:
        lab = np.asarray(m["LabelMap"])
        if lab.ndim != 2:
            raise DataError(f"{path}: LabelMap must be 2-D, got {lab.shape}")
        return "labels", [lab]
    keys = ", ".join(k for k in m if not k.startswith("__")) or "none"
    raise DataError(f"{path}: neither groundTruth (BSDS500) nor LabelMap (PASCAL-Context) in it (variables: {keys})")


def read_ground_truth(path: Path, protocol: str | EdgeProtocol) -> list[np.ndarray]:
    """The boolean boundary maps (one per annotator) the protocol matches against (thinned,
    where the protocol thins, by :meth:`EdgeProtocol.image_counts`)."""
    protocol = get_protocol(protocol)
    if path.suffix == ".png":
        from PIL import Image

        try:
            with Image.open(path) as im:
                a = np.array(im)
        except Exception as e:  # noqa: BLE001
            raise DataError(f"{path}: cannot read the ground truth ({type(e).__name__}: {e})") from None
        if a.ndim != 2:
            raise DataError(f"{path}: expected a single-channel boundary PNG, got shape {a.shape}")
        return [a > 0]
    kind, items = _segmentations_or_boundaries(path)
    if kind == "labels":
        return [seg2bmap(items[0])]
    try:
        return [protocol.annotator(seg, bdry, where=f"{path}: annotator {i + 1}") for i, (seg, bdry) in enumerate(items)]
    except ValueError as e:
        raise DataError(str(e)) from None


def pair_files(pred_dir: Path, gt_dir: Path) -> list[tuple[str, Path, Path]]:
    if not pred_dir.is_dir():
        raise DataError(f"{pred_dir}: no such folder of predictions")
    if not gt_dir.is_dir():
        raise DataError(f"{gt_dir}: no such ground-truth folder")
    ids = sorted(p.stem for p in pred_dir.glob("*.png"))
    if not ids:
        raise DataError(f"{pred_dir}: no <id>.png prediction in it")
    pairs, missing = [], []
    for i in ids:
        g = next((gt_dir / f"{i}{ext}" for ext in (".mat", ".png") if (gt_dir / f"{i}{ext}").is_file()), None)
        if g is None:
            missing.append(i)
        else:
            pairs.append((i, pred_dir / f"{i}.png", g))
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise DataError(f"{len(missing)} of {len(ids)} predictions have no ground truth "
                        f"({gt_dir}/<id>.mat or .png): {shown}")
    return pairs


def evaluate_pair(args) -> np.ndarray:
    """Counts [T, 4] of one (id, prediction, ground truth) pair."""
    ident, pred_path, gt_path, protocol, thresholds, max_dist = args
    pred = read_prediction(pred_path)
    gts = read_ground_truth(gt_path, protocol)
    for g in gts:
        if g.shape != pred.shape:
            raise DataError(f"{ident}: prediction {pred.shape[0]}x{pred.shape[1]} ({pred_path.name}) but ground truth "
                            f"{g.shape[0]}x{g.shape[1]} ({gt_path.name}); predictions must be at the image's size")
    return get_protocol(protocol).image_counts(pred, gts, thresholds, max_dist=max_dist)


def evaluate_folder(pred_dir, gt_dir, protocol: str = "seism", max_dist: float = 0.0075, thresholds=None,
                    workers: int = 0) -> dict:
    """odsF / oisF / AP (percent), odsP / odsR, odsT and the number of images."""
    from tsn.metrics import build_metric

    if not max_dist > 0:
        raise DataError(f"--max-dist must be > 0, got {max_dist}")
    metric = build_metric("edge", protocol=protocol, thresholds=thresholds, edge_max_dist=max_dist)
    pairs = pair_files(Path(pred_dir), Path(gt_dir))
    jobs = [(i, p, g, protocol, metric.thresholds, max_dist) for i, p, g in pairs]
    if workers > 0 and len(jobs) > 1:
        with ProcessPoolExecutor(min(workers, len(jobs))) as pool:
            counts = list(pool.map(evaluate_pair, jobs, chunksize=max(1, len(jobs) // (8 * workers))))
    else:
        counts = [evaluate_pair(j) for j in jobs]
    metric.add_image_counts(counts)
    res = metric.compute()
    return {**res, "images": len(counts), "protocol": protocol, "max_dist": max_dist,
            "thresholds": len(metric.thresholds)}


def main(args: argparse.Namespace) -> dict:
    if args.workers < 0:
        raise DataError(f"--workers must be >= 0, got {args.workers}")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    res = evaluate_folder(args.pred_dir, args.gt, args.protocol, args.max_dist, args.thresholds, args.workers)
    if args.json:
        print(json.dumps(res))
    else:
        print(f"{res['images']} images, protocol {res['protocol']}, max_dist {res['max_dist']}, "
              f"{res['thresholds']} thresholds")
        print(f"odsF {res['odsF']:.2f}  oisF {res['oisF']:.2f}  AP {res['AP']:.2f}  "
              f"(odsP {res['odsP']:.2f}, odsR {res['odsR']:.2f} at t = {res['odsT']:.3f})")
    sys.stdout.flush()
    return res


__all__ = ["evaluate_folder", "read_ground_truth", "read_prediction", "TSNError"]
