"""``python -m eval params CONFIG.yaml [--json]``: the configured model's parameter count."""

from __future__ import annotations

import argparse
import json

from tsn.config import load_config
from tsn.models.params import parameter_report
from tsn.models.registry import build_model, task_channels_for


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("params", help="parameter count of a configured model, by part")
    p.add_argument("config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=main)


def report_for_config(cfg) -> dict:
    import torch

    import dataclasses

    tasks = list(cfg.data.tasks)
    mcfg = dataclasses.replace(cfg.model, pretrained=False)  # counting needs no weights
    with torch.device("meta"):  # count without allocating (single-task x9 is 160M parameters)
        model = build_model(mcfg, task_channels_for(tasks, cfg.data.name))
    return {"model": cfg.model.name, "config": cfg.name, "dataset": cfg.data.name, "tasks": tasks,
            "encoder": cfg.model.encoder, **parameter_report(model)}


def main(args: argparse.Namespace) -> None:
    rep = report_for_config(load_config(args.config, args.set))
    if args.json:
        print(json.dumps(rep))
        return
    print(f"{rep['model']} ({rep['encoder']}) on {rep['dataset']}, tasks: {', '.join(rep['tasks'])}")
    for part, n in rep["by_part"].items():
        if n:
            print(f"  {part:<11} {n:>12,d}  {n / 1e6:8.2f}M")
    print(f"  {'total':<11} {rep['params']:>12,d}  {rep['params'] / 1e6:8.2f}M"
          + (f"  ({rep['trainable'] / 1e6:.2f}M trainable)" if rep["trainable"] != rep["params"] else ""))
