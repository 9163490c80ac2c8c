"""``python -m eval edges PRED_DIR --gt GT_DIR``: odsF / oisF / AP of a folder of edge maps, no MATLAB.

    python -m eval edges PRED_DIR --gt GT_DIR [--protocol seism|bsds|fast] [--max-dist F]
                         [--thresholds N|hed] [--ids FILE | --partial] [--workers N]
                         [--per-image FILE] [--plot FILE [--published DATASET]] [--json]

``PRED_DIR/<id>.png|.npy|.mat``: soft edge maps of any method: 8-bit or 16-bit grayscale PNGs,
float arrays in [0, 1], or BSDS ``ucm2`` hierarchies. Ground truth ``GT_DIR/<id>.mat|.png``: a
BSDS500 ``groundTruth`` cell, SEISM's ``gt_seg``, a PASCAL-Context ``LabelMap`` or a binary
boundary PNG. What each format and protocol means: :mod:`tsn.metrics.edge_io`,
:mod:`tsn.metrics.edge_protocols` and docs/METRICS.md.

- ``seism`` (the TSN paper, ASTMT, ATRC, InvPT): ground truth ``thin(seg2bmap(seg))``,
  SEISM's NMS on the 8-bit map, ``> t`` at the 101 HED thresholds.
- ``bsds`` (the BSDS500 bench; HED / RCF after their own NMS): each annotator's ``Boundaries``,
  ``>= t`` at 99 thresholds, no NMS.

The set scored is every ground-truth id in GT_DIR (or those listed in ``--ids FILE``, e.g. a
split list when GT_DIR holds several splits); a missing prediction is an error unless
``--partial``, and a partial score says so. The tolerance is ``max_dist`` x the image's
diagonal (default 0.0075; NYUD: 0.011). ``--per-image FILE`` writes each image's best
(T, R, P, F) as the bench's ``eval_bdry_img.txt``; ``--plot FILE`` draws the PR curve with
iso-F lines and, with ``--published``, the field's published curves of that dataset.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from tsn.errors import DataError, TSNError
from tsn.io import atomic_write_text, check_output_file
from tsn.metrics.edge_io import evaluate_folder, image_rows, read_ids
from tsn.metrics.edge_protocols import PROTOCOLS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("edges", help="odsF / oisF / AP of a folder of edge maps (SEISM or BSDS protocol)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pred_dir", help="folder of <id>.png (8/16-bit), <id>.npy or <id>.mat (ucm2) soft edge maps")
    p.add_argument("--gt", required=True, metavar="GT_DIR", help="folder of <id>.mat (groundTruth / LabelMap) or <id>.png")
    p.add_argument("--protocol", default="seism", choices=PROTOCOLS.names())
    p.add_argument("--max-dist", type=float, default=0.0075, help="tolerance / image diagonal (0.0075; NYUD 0.011)")
    p.add_argument("--thresholds", default=None, help="N evenly spaced ones or 'hed' (default: seism hed, bsds 99)")
    p.add_argument("--ids", metavar="FILE", help="the ids to score, one per line (default: every id in GT_DIR)")
    p.add_argument("--partial", action="store_true", help="score the predicted ids when some are missing (said so)")
    p.add_argument("--workers", type=int, default=0, help="processes (0: this one)")
    p.add_argument("--per-image", metavar="FILE", help="write each image's id, best T, R, P, F (eval_bdry_img.txt)")
    p.add_argument("--plot", metavar="FILE", help="draw the precision-recall curve (.png / .pdf / .svg)")
    p.add_argument("--published", metavar="DATASET", help="with --plot: the field's published curves of DATASET "
                   "(bsds500 or nyud)")
    p.add_argument("--label", default="ours", help="with --plot: the name of this curve (default: ours)")
    p.add_argument("--overwrite", action="store_true", help="replace existing --per-image / --plot files")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> dict:
    if args.workers < 0:
        raise DataError(f"--workers must be >= 0, got {args.workers}")
    if args.ids and args.partial:
        raise DataError("--ids names the set scored and --partial scores a subset of it: give one of them")
    if args.published and not args.plot:
        raise DataError("--published adds curves to the --plot figure: give --plot FILE too")
    if args.published:
        from tsn.metrics.pr_curves import published_methods

        published_methods(args.published)  # a wrong name fails now, not after the evaluation
    for out in (args.per_image, args.plot):  # before minutes of work, not after
        if out:
            check_output_file(out, args.overwrite)
    ids = read_ids(args.ids) if args.ids else None
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    res = evaluate_folder(args.pred_dir, args.gt, args.protocol, args.max_dist, args.thresholds, args.workers,
                          ids=ids, partial=args.partial)
    if args.per_image:
        rows = image_rows(res)
        atomic_write_text(args.per_image, "".join(f"{i} {t:g} {r:g} {p:g} {f:g}\n" for i, t, r, p, f in rows))
    if args.plot:
        from tsn.metrics.pr_curves import Curve, plot_pr

        ours = Curve.from_counts(args.label, res["threshold_values"], res["counts"], res)
        plot_pr([ours], args.plot, dataset=args.published,
                title=f"{res['images']} images, protocol {res['protocol']}")
    summary = {k: v for k, v in res.items() if k not in ("per_image", "threshold_values", "counts")}
    if args.json:
        print(json.dumps(summary))
    else:
        part = (f" (PARTIAL: {res['missing']} of {res['ground_truth']} ground-truth images have no prediction)"
                if res["partial"] else "")
        print(f"{res['images']} images{part}, protocol {res['protocol']}, max_dist {res['max_dist']}, "
              f"{res['thresholds']} thresholds")
        print(f"odsF {res['odsF']:.2f}  oisF {res['oisF']:.2f}  AP {res['AP']:.2f}  "
              f"(odsP {res['odsP']:.2f}, odsR {res['odsR']:.2f} at t = {res['odsT']:.3f})")
        for out in (args.per_image, args.plot):
            if out:
                print(f"wrote {out}")
    sys.stdout.flush()
    return summary


__all__ = ["evaluate_folder", "TSNError"]
