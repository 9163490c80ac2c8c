"""Write a PNG grid of samples with every label map coloured, to look at a dataset.

    python -m tsn.data.preview synthetic --out docs/synthetic_preview.png --n 6 --start 6 --scale 2
    python -m tsn.data.preview pascal --root /data/PASCAL_MT --split val --out /tmp

One row per sample: the image, then each task's label (see
:mod:`tsn.data.visualize` for the colours).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tsn.data.base import build_dataset
from tsn.data.visualize import colorize
from tsn.errors import TSNError


def grid(dataset, indices, scale: int = 1) -> Image.Image:
    tasks = list(dataset.tasks)
    cols = ["image", *tasks]
    rows = []
    for i in indices:
        s = dataset[i]
        tiles = [colorize(c, s[c]) for c in cols]
        rows.append(np.concatenate([np.pad(t, ((1, 1), (1, 1), (0, 0)), constant_values=255) for t in tiles], 1))
    body = Image.fromarray(np.concatenate(rows, 0))
    if scale > 1:
        body = body.resize((body.width * scale, body.height * scale), Image.NEAREST)
    header = 14
    out = Image.new("RGB", (body.width, body.height + header), (255, 255, 255))
    out.paste(body, (0, header))
    draw = ImageDraw.Draw(out)
    tile_w = body.width // len(cols)
    for k, c in enumerate(cols):
        draw.text((k * tile_w + 3, 1), c, fill=(0, 0, 0))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tsn.data.preview", description=__doc__.splitlines()[0])
    ap.add_argument("name", help="dataset name (synthetic, pascal, nyud)")
    ap.add_argument("--out", default=".", help="folder for preview_<name>.png, or a .png file path")
    ap.add_argument("--root", default=None)
    ap.add_argument("--split", default="train")
    ap.add_argument("--n", type=int, default=6, help="number of samples (rows)")
    ap.add_argument("--start", type=int, default=0, help="first sample index")
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None, help="synthetic only")
    ap.add_argument("--scale", type=int, default=1, help="integer zoom of the picture")
    args = ap.parse_args(argv)
    try:
        opts = {"seed": args.seed} if args.seed is not None else {}
        ds = build_dataset(args.name, root=args.root, split=args.split, size=args.size, **opts)
        idx = list(range(args.start, min(args.start + args.n, len(ds))))
        img = grid(ds, idx, args.scale)
    except TSNError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    path = out if out.suffix.lower() == ".png" else out / f"preview_{args.name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
