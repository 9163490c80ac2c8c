"""python -m eval export RUN_DIR_or_CHECKPOINT --format onnx|torchscript --out FILE [--tasks ...]
[--size H W] [--dynamic] [--overwrite]

Writes one graph: input ``image`` [N, 3, H, W] (ImageNet-normalised RGB),
one output per task named by task (raw outputs: logits, unnormalised
normals, depth in the dataset's unit), every task decoded in one stacked
pass. ``--size`` is the example input it is traced at (default: the run's
data.size); with ``--dynamic`` an ONNX graph's batch, height and width are
free (every model kind), without it they are the example's. TorchScript
traces record shapes symbolically: its graphs take any batch and size, and
return a dict keyed by task. Checked against eager PyTorch by
tests/test_export.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tsn.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> None:
    from tsn.export import FORMATS

    p = sub.add_parser("export", help="export a trained network to ONNX or TorchScript")
    p.add_argument("path", help="run directory or checkpoint file")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--tasks", nargs="+", help="only these tasks, in this output order (default: all)")
    p.add_argument("--size", nargs=2, type=int, metavar=("H", "W"), help="example input size (default: the run's data.size)")
    p.add_argument("--dynamic", action="store_true", help="free batch, height and width")
    p.add_argument("--batch", type=int, default=1, help="example batch size (the fixed one without --dynamic)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing FILE")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> dict:
    from tsn.export import ExportGraph, export_model
    from tsn.inference import parse_size
    from tsn.io import _atomic
    from tsn.runs import load_run_checkpoint

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise ConfigError(f"{out} exists; pass --overwrite or another --out")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; name the file to write")
    if args.batch < 1:
        raise ConfigError(f"--batch must be at least 1, got {args.batch}")
    size = parse_size(args.size) if args.size else None
    cfg, model, ckpt = load_run_checkpoint(args.path, "cpu")
    graph = ExportGraph(model, args.tasks)  # the kind and the tasks are checked before any tracing
    size = size or model.input_size or (128, 128)
    data = export_model(model, args.format, graph.tasks, size, args.dynamic, args.batch)
    _atomic(out, lambda f: f.write(data))
    fixed = args.format == "onnx" and not args.dynamic
    shape = f"{args.batch} x 3 x {size[0]} x {size[1]}" if fixed else "N x 3 x H x W (any batch and size)"
    print(f"{args.format} graph of {cfg.model.name} ({', '.join(graph.tasks)}) written to {out}: "
          f"input image {shape}, {len(data) / 1e6:.1f} MB")
    return {"out": str(out), "tasks": graph.tasks, "dynamic": args.dynamic}
