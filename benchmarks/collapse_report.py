"""The collapse suite's table (docs/results/collapse.md): final validation
headline metrics, per-epoch validation, and each task's training loss over its
last pass (the mean of its last 5 logged steps), from the runs' metrics.json
and TensorBoard events.

    python benchmarks/collapse_report.py runs/collapse [--json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HEAD = [("semseg", "mIoU"), ("parts", "mIoU"), ("sal", "mIoU"), ("edge", "odsF"), ("normals", "mean"), ("depth", "rmse")]


def train_losses(run: Path) -> dict[str, float]:
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        return {}
    ea = EventAccumulator(str(run / "tb"))
    ea.Reload()
    out = {}
    for tag in ea.Tags().get("scalars", []):
        if tag.startswith("train/loss_"):
            v = [e.value for e in ea.Scalars(tag)][-5:]
            out[tag[len("train/loss_"):]] = sum(v) / len(v)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("root")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rows = []
    for m in sorted(Path(args.root).glob("*/seed*/metrics.json")):
        d = json.loads(m.read_text())
        run = m.parent
        rows.append({"run": f"{run.parent.name}/{run.name}", "val": {t: d["val"][t][k] for t, k in HEAD if t in d["val"]},
                     "best_epoch": d.get("best_epoch"), "elapsed_s": d.get("elapsed"),
                     "history": [{t: round(h["val"][t][k], 2) for t, k in HEAD if t in h["val"]} for h in d.get("history", [])],
                     "train_loss_last_pass": {k: round(v, 3) for k, v in train_losses(run).items()}})
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print("| run | " + " | ".join(f"{t} {k}" for t, k in HEAD) + " | best epoch |")
    print("|---" * (len(HEAD) + 2) + "|")
    for r in rows:
        print(f"| {r['run']} | " + " | ".join(f"{r['val'].get(t, float('nan')):.2f}" for t, _ in HEAD)
              + f" | {r['best_epoch']} |")
    print()
    print("| run | per-epoch val (" + ", ".join(f"{t} {k}" for t, k in HEAD) + ") | train loss, last 5 steps per task |")
    print("|---|---|---|")
    for r in rows:
        hist = " ; ".join("/".join(str(h.get(t, "-")) for t, _ in HEAD) for h in r["history"])
        tl = ", ".join(f"{k} {v}" for k, v in sorted(r["train_loss_last_pass"].items()))
        print(f"| {r['run']} | {hist} | {tl} |")


if __name__ == "__main__":
    main()
