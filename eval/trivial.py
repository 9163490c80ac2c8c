"""``python -m eval trivial CONFIG.yaml [--split val] [--fit-split same|train] [--set k=v] [--json]``:
the trivial predictor of every task (majority class, nothing, mean depth,
mean normal) scored with the project's metrics on a split (tsn/metrics/trivial.py)."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("trivial", help="metrics of every task's trivial (constant) predictor on a split")
    p.add_argument("config")
    p.add_argument("--split", choices=["train", "val", "test"], default="val")
    p.add_argument("--fit-split", choices=["same", "train", "val", "test"], default="same",
                   help="split whose labels fix the constants (same: the evaluated one, the best constant in hindsight)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> dict:
    from tsn.config import load_config
    from tsn.engine.report import results_table
    from tsn.engine.trainer import build_data, metric_options
    from tsn.metrics import MultiTaskMetrics
    from tsn.metrics.trivial import trivial_metrics
    from tsn.models.registry import task_channels_for

    cfg = load_config(args.config, args.set)
    tasks = list(cfg.data.tasks)
    names = {"train": cfg.data.train_split, "val": cfg.data.val_split, "test": cfg.data.test_split}
    _, _, loader = build_data(cfg, names[args.split], train=False)
    fit = None
    if args.fit_split not in ("same", args.split):
        _, _, fit = build_data(cfg, names[args.fit_split], train=False)
    channels = task_channels_for(tasks, cfg.data.name)
    results, constants = trivial_metrics(loader, tasks, channels, MultiTaskMetrics(tasks, **metric_options(cfg)), fit)
    rep = {"config": args.config, "dataset": cfg.data.name, "split": args.split,
           "fit_split": args.split if args.fit_split == "same" else args.fit_split,
           "overrides": list(args.set), "constants": constants, "results": results}
    if args.json:
        print(json.dumps(rep))
    else:
        print(f"trivial predictor on {cfg.data.name}/{names[args.split]} (constants fitted on {rep['fit_split']})")
        for t, c in constants.items():
            print(f"  {t:<8} {c}")
        print(results_table(results))
    return rep
