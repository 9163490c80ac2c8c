"""python -m eval RUN_DIR_or_CHECKPOINT [--split val|test] [--tasks ...] [--save-predictions DIR] [--json]

Evaluates a trained model with the full protocol (99 edge thresholds),
prints a per-task table and records the results under the split's key in
the run's ``metrics.json`` (other keys are kept).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from tsn.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="evaluate a run directory or checkpoint")
    p.add_argument("path", help="run directory or checkpoint file")
    p.add_argument("--split", default="val", choices=["train", "val", "test"])
    p.add_argument("--tasks", nargs="+", help="evaluate only these tasks")
    p.add_argument("--save-predictions", metavar="DIR", help="write coloured input / label / prediction PNGs")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (e.g. data.root=..., eval.batch_size=4)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=main)


def load_run(path: str | Path, overrides: list[str] | None = None, device: str = "auto"):
    """(config, model on device, checkpoint) from a run directory or checkpoint file."""
    from tsn.config import apply_overrides, load_config
    from tsn.engine.checkpoint import load_checkpoint, load_model_state
    from tsn.engine.trainer import resolve_device
    from tsn.models import build_model
    from tsn.runtime import tune_cpu_allocator

    ckpt = load_checkpoint(path)
    if "config" not in ckpt:
        raise ConfigError(f"{ckpt['path']} holds no config; it was not written by python -m train")
    cfg = load_config(data=apply_overrides(ckpt["config"], list(overrides or [])))
    cfg.model.pretrained = False  # the checkpoint holds the weights
    dev = resolve_device(device)
    if dev.type == "cpu":
        tune_cpu_allocator()
    model = build_model(cfg.model, ckpt.get("tasks") or {})
    load_model_state(model, ckpt)
    return cfg, model.to(dev).eval(), ckpt


def main(args: argparse.Namespace) -> dict:
    from tsn.engine.evaluate import evaluate
    from tsn.engine.report import results_table
    from tsn.engine.trainer import build_data, load_reference, metric_options
    from tsn.io import atomic_write_json
    from tsn.metrics import MultiTaskMetrics, delta_m

    cfg, model, ckpt = load_run(args.path, args.set, args.device)
    tasks = args.tasks or list(cfg.data.tasks)
    bad = [t for t in tasks if t not in model.task_channels]
    if bad:
        raise ConfigError(f"--tasks: the model has no {', '.join(bad)}; it has {', '.join(model.task_channels)}")
    cfg.data.tasks = [t for t in cfg.data.tasks if t in tasks] + [t for t in tasks if t not in cfg.data.tasks]
    split = {"train": cfg.data.train_split, "val": cfg.data.val_split, "test": cfg.data.test_split}[args.split]
    _, _, loader = build_data(cfg, split, train=False)
    saver = PredictionSaver(Path(args.save_predictions), tasks) if args.save_predictions else None
    device = next(model.parameters()).device
    cl = cfg.train.channels_last  # the memory format the run trained and validated in
    if cl:
        model = model.to(memory_format=torch.channels_last)
    res = evaluate(model, loader, tasks, MultiTaskMetrics(tasks, **metric_options(cfg)), device, channels_last=cl, on_batch=saver,
                   progress=not args.json and sys.stderr.isatty())
    ref = load_reference(cfg.eval.single_task)
    dm = delta_m(res.metrics, ref) if ref and all(t in ref for t in tasks) else None
    run_dir = Path(ckpt["path"]).parent.parent if Path(ckpt["path"]).parent.name == "checkpoints" else Path(ckpt["path"]).parent
    out_json = run_dir / "metrics.json"
    data = json.loads(out_json.read_text()) if out_json.is_file() else {}
    data[args.split] = res.metrics
    data[f"{args.split}_checkpoint"] = ckpt["path"]
    if dm is not None:
        data[f"{args.split}_delta_m"] = dm
    atomic_write_json(out_json, data)
    if args.json:
        print(json.dumps({"split": args.split, "checkpoint": ckpt["path"], "results": res.metrics, "delta_m": dm}))
    else:
        print(f"{cfg.name}: {cfg.model.name} on {cfg.data.name}/{split}, checkpoint {ckpt['path']} (epoch {ckpt.get('epoch')})")
        print(results_table(res.metrics))
        if dm is not None:
            print(f"delta_m vs single-task: {dm:+.2f}%")
        if saver:
            print(f"predictions written to {args.save_predictions}")
    return res.metrics


class PredictionSaver:
    """Writes one PNG per image: input, then label and prediction of every task."""

    def __init__(self, out: Path, tasks: list[str]) -> None:
        self.out, self.tasks = out, tasks
        out.mkdir(parents=True, exist_ok=True)

    def __call__(self, batch: dict, preds: dict[str, torch.Tensor]) -> None:
        from PIL import Image

        from tsn.engine.visuals import prediction_panel

        for i, meta in enumerate(batch["meta"]):
            panel = prediction_panel(batch, preds, i, self.tasks)
            name = str(meta.get("id", i)).replace("/", "_")
            Image.fromarray(panel).save(self.out / f"{name}.png")
