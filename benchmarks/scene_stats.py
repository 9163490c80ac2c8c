"""How much of a synthetic image each task's content covers, per framing.

    python benchmarks/scene_stats.py [--n 300] [--size 64] [--framing subject room] [--split val]

The numbers behind the README's framing note: share of images with a
person, the person's and the salient object's pixel share (median, 90th
percentile), the person's head in pixels, and the part-label shares of the
labelled pixels. They decide whether a task can be learned at a given image
size: a head of one pixel cannot.
"""

from __future__ import annotations

import argparse

import numpy as np

from tsn.data.scenes import FRAMINGS, PART_NAMES, PERSON
from tsn.data.synthetic import scene_arrays


def stats(framing: str, n: int, size: int, split: str = "val", seed: int = 0) -> dict[str, float]:
    person, head, sal = [], [], []
    parts = np.zeros(len(PART_NAMES))
    for i in range(n):
        a = scene_arrays(seed, split, i, (size, size), framing)
        person.append((a["semseg"] == PERSON).mean())
        sal.append((a["sal"] > 0.5).mean())
        p = a["parts"]
        labelled = p[p < len(PART_NAMES)]
        parts += np.bincount(labelled.ravel().astype(np.int64), minlength=len(PART_NAMES))[: len(PART_NAMES)]
        if person[-1] > 0:
            head.append(int((p == PART_NAMES.index("head")).sum()))
    person, sal = np.array(person), np.array(sal)
    seen = person[person > 0]
    out = {
        "images_with_person_%": 100 * float((person > 0).mean()),
        "person_share_median_%": 100 * float(np.median(seen)) if seen.size else 0.0,
        "person_share_q90_%": 100 * float(np.quantile(seen, 0.9)) if seen.size else 0.0,
        "head_px_median": float(np.median(head)) if head else 0.0,
        "sal_share_median_%": 100 * float(np.median(sal)),
    }
    shares = parts / max(parts.sum(), 1)
    out.update({f"parts_{name}_%": 100 * float(s) for name, s in zip(PART_NAMES, shares)})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--split", default="val", choices=("train", "val", "test"))
    p.add_argument("--framing", nargs="+", default=list(FRAMINGS), choices=FRAMINGS)
    args = p.parse_args()
    rows = {f: stats(f, args.n, args.size, args.split) for f in args.framing}
    keys = list(next(iter(rows.values())))
    print(f"{args.n} {args.split} scenes at {args.size}x{args.size}")
    print(f"{'':24s}" + "".join(f"{f:>10s}" for f in rows))
    for k in keys:
        print(f"{k:24s}" + "".join(f"{rows[f][k]:10.1f}" for f in rows))


if __name__ == "__main__":
    main()
