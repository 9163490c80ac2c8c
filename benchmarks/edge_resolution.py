"""The edge F the ground truth keeps when it is predicted at 1/s of the input size.

    python benchmarks/edge_resolution.py configs/synthetic/tsn.yaml [--strides 1 2 4 8] [--split val] [--set KEY=VALUE ...]

The "prediction" is the ground-truth boundary map itself, average-pooled by
the stride s and resized back to the input (bilinear, align_corners=True:
how PAD-Net and MTI-Net here bring their H/4 outputs to the input), scored
by the config's edge metric (full protocol). What the ground truth itself
keeps through that bottleneck measures what predicting at H/s costs (not a
strict bound: a network may place its coarse logits better than an average),
behind the edge column of the architectures that predict at H/4 on 64-pixel
images (docs/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F


def oracle_logits(gt: torch.Tensor, stride: int) -> torch.Tensor:
    """Logits of the boundary map (B, 1, H, W; void counted as no edge) seen through stride ``stride``."""
    p = (gt == 1).float()
    if stride > 1:
        small = F.avg_pool2d(p, stride, ceil_mode=True)
        p = F.interpolate(small, size=gt.shape[-2:], mode="bilinear", align_corners=True)
    return torch.logit(p.clamp(1e-6, 1 - 1e-6))


def main(argv: list[str] | None = None) -> dict[int, dict[str, float]]:
    from tsn.config import load_config
    from tsn.engine.factory import build_metrics
    from tsn.engine.trainer import build_data

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--strides", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--split", choices=["train", "val", "test"], default="val")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    cfg = load_config(args.config, [*args.set, "data.tasks=[edge]"])
    names = {"train": cfg.data.train_split, "val": cfg.data.val_split, "test": cfg.data.test_split}
    _, _, loader = build_data(cfg, names[args.split], train=False)
    metrics = {s: build_metrics(cfg, ["edge"]) for s in args.strides}
    for batch in loader:
        gt = batch["edge"]
        gt = gt if gt.dim() == 4 else gt.unsqueeze(1)
        for s, m in metrics.items():
            m.update({"edge": oracle_logits(gt, s)}, {"edge": batch["edge"]})
    out = {s: m.compute()["edge"] for s, m in metrics.items()}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"edge metric of the ground truth seen through stride s ({cfg.data.name}/{names[args.split]})")
        print(f"{'stride':>6} {'odsF':>6} {'oisF':>6} {'AP':>6}")
        for s, r in out.items():
            print(f"{s:>6} {r['odsF']:6.2f} {r['oisF']:6.2f} {r['AP']:6.2f}")
    return out


if __name__ == "__main__":
    main()
