"""python -m eval RUN_DIR_or_CHECKPOINT [--split val|test] [--tasks ...] [--geometry pad|release]
                 [--set KEY=VALUE] [--export DIR] [--record PATH] [--json]

Evaluates a trained model with the full protocol, every image scored on its
real pixels at its original size (``tsn.engine.geometry``), and prints a
per-task table.

The training record (``metrics.json``) is never touched. The evaluation is
written beside it as ``RUN/evals/<split>-<tasks>-<protocol>-<checkpoint>.json``
(atomically): ``<tasks>`` is ``all`` or the evaluated tasks joined by ``+``;
``<protocol>`` the geometry (and the edge protocol, where the config names
one), plus ``-set<hash>`` when ``--set`` changed anything that can change the
numbers; ``<checkpoint>`` the checkpoint's file stem and the first 8 hex
digits of its SHA-1, so another model's checkpoint placed in a run directory
never overwrites that run's evaluations. Where the run directory cannot be
written, the results are still printed, with one line naming the path that
could not be saved (``--record PATH`` writes the record elsewhere).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from tsn.engine.progress import wants_records
from tsn.errors import ConfigError
from tsn.runs import run_dir

#: ``--set`` keys that cannot change the numbers (they do not enter the record's name)
NEUTRAL_KEYS = ("data.root", "data.num_workers", "eval.batch_size", "eval.workers", "train.device")


def _stderr_line(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="evaluate a run directory or checkpoint")
    p.add_argument("path", help="run directory or checkpoint file")
    p.add_argument("--split", default="val", choices=["train", "val", "test"])
    p.add_argument("--tasks", nargs="+", help="evaluate only these tasks")
    p.add_argument("--geometry", choices=["pad", "release"],
                   help="test-time geometry (default: the config's eval.geometry): pad = pad to the evaluation size; "
                        "release = the authors' test pipeline (bicubic resize, back to the original size, 8-bit)")
    p.add_argument("--save-predictions", metavar="DIR", help="write coloured input / label / prediction PNGs")
    p.add_argument("--export", metavar="DIR",
                   help="write every prediction at the original size in the evaluators' formats, one folder per task")
    p.add_argument("--record", metavar="PATH", help="write the evaluation record here instead of RUN/evals/")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (e.g. data.root=..., eval.batch_size=4)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=main)


def load_run(path: str | Path, overrides: list[str] | None = None, device: str = "auto"):
    """(config, model on device, checkpoint) from a run directory or checkpoint file."""
    from tsn.runs import load_run_checkpoint

    return load_run_checkpoint(path, device, overrides)


# ---------------------------------------------------------------- the record


def file_sha1(path: str | Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def checkpoint_epoch(ckpt: dict[str, Any]) -> str:
    """Where the checkpoint stands: a best checkpoint reports the epoch its
    model was selected at (``metrics.json``'s ``best_epoch``), any other the
    epochs it had completed; an imported one where it came from."""
    if ckpt.get("release"):
        return f"imported from {Path(ckpt['release']['source']).name}"
    best = (ckpt.get("best") or {}).get("epoch")
    if Path(ckpt.get("path", "")).stem == "best" and best is not None:
        return f"best epoch {best}"
    return f"epoch {ckpt.get('epoch')}"


def edge_protocol(cfg) -> str | None:
    """The edge protocol the config asks for: ``eval.options.edge.protocol``
    over the edge task's declared default (old ``eval.edge_protocol`` keys
    arrive here through the config's aliases)."""
    from tsn.tasks import get_task

    return get_task("edge").options("eval", cfg.eval.options.get("edge") or {}).get("protocol")


def protocol_name(geometry: str, cfg, tasks: list[str], overrides: list[str]) -> str:
    name = geometry
    edge_protocol_ = edge_protocol(cfg)
    if edge_protocol_ and "edge" in tasks:
        name += f"-{edge_protocol_}"
    relevant = sorted(o for o in overrides if o.split("=", 1)[0].strip() not in NEUTRAL_KEYS)
    if relevant:
        name += "-set" + hashlib.sha1("\n".join(relevant).encode()).hexdigest()[:6]
    return name


def record_name(split: str, tasks: list[str], model_tasks: list[str], protocol: str, ckpt_path: str, sha: str) -> str:
    which = "all" if set(tasks) == set(model_tasks) else "+".join(t for t in model_tasks if t in tasks)
    return f"{split}-{which}-{protocol}-{Path(ckpt_path).stem}-{sha[:8]}.json"


def save_record(path: Path, record: dict[str, Any]) -> str | None:
    """Write the record atomically; the reason as one line if it cannot be written."""
    from tsn.io import atomic_write_json

    try:
        atomic_write_json(path, record)
    except OSError as e:
        return f"{type(e).__name__}: {e.strerror or e}"
    return None


# ---------------------------------------------------------------- main


def main(args: argparse.Namespace) -> dict:
    from tsn.engine.evaluate import evaluate
    from tsn.engine.geometry import check_geometry, eval_transform
    from tsn.engine.report import results_table
    from tsn.engine.trainer import build_data, load_reference, metric_options
    from tsn.metrics import MultiTaskMetrics, delta_m

    cfg, model, ckpt = load_run(args.path, args.set, args.device)
    model_tasks = list(model.task_channels)
    tasks = args.tasks or list(cfg.data.tasks)
    bad = [t for t in tasks if t not in model.task_channels]
    if bad:
        raise ConfigError(f"--tasks: the model has no {', '.join(bad)}; it has {', '.join(model.task_channels)}")
    cfg.data.tasks = [t for t in cfg.data.tasks if t in tasks] + [t for t in tasks if t not in cfg.data.tasks]
    geometry = check_geometry(args.geometry or getattr(cfg.eval, "geometry", "pad"))
    split = {"train": cfg.data.train_split, "val": cfg.data.val_split, "test": cfg.data.test_split}[args.split]
    ckpt_path = str(ckpt["path"])
    sha = file_sha1(ckpt_path)
    protocol = protocol_name(geometry, cfg, tasks, args.set)
    if args.record:
        out_json = Path(args.record)
    else:
        out_json = run_dir(Path(ckpt_path)) / "evals" / record_name(args.split, tasks, model_tasks, protocol, ckpt_path, sha)
    exporter = Exporter(Path(args.export), tasks) if args.export else None  # refuses a used folder before any work

    ds, _, loader = build_data(cfg, split, train=False)
    ds.transform = eval_transform(geometry, ds.size, ds.native_size())
    saver = PredictionSaver(Path(args.save_predictions), tasks) if args.save_predictions else None
    device = next(model.parameters()).device
    cl = cfg.train.channels_last  # the memory format the run trained and validated in
    if cl:
        model = model.to(memory_format=torch.channels_last)
    t0 = time.time()
    res = evaluate(model, loader, tasks, MultiTaskMetrics(tasks, **metric_options(cfg)), device, channels_last=cl,
                   on_batch=saver, on_image=exporter, progress=not args.json and sys.stderr.isatty(),
                   say=_stderr_line if wants_records() else None)
    ref = load_reference(cfg.eval.single_task)
    dm = delta_m(res.metrics, ref) if ref and all(t in ref for t in tasks) else None
    record = {
        "kind": "evaluation", "name": cfg.name, "model": cfg.model.name, "dataset": cfg.data.name,
        "split": args.split, "dataset_split": split, "tasks": tasks, "geometry": geometry,
        "edge_protocol": edge_protocol(cfg) if "edge" in tasks else None,
        "protocol": protocol, "metric_options": _jsonable(metric_options(cfg)), "overrides": list(args.set),
        "checkpoint": ckpt_path, "checkpoint_sha1": sha, "epoch": ckpt.get("epoch"),
        "best_epoch": (ckpt.get("best") or {}).get("epoch"), "images": len(ds),
        "results": res.metrics, "delta_m": dm, "time_s": round(time.time() - t0, 1),
    }
    failure = save_record(out_json, record)
    if args.json:
        print(json.dumps({"split": args.split, "checkpoint": ckpt_path, "geometry": geometry, "protocol": protocol,
                          "results": res.metrics, "delta_m": dm, "record": None if failure else str(out_json)}))
    else:
        print(f"{cfg.name}: {cfg.model.name} on {cfg.data.name}/{split} ({geometry} geometry), "
              f"checkpoint {ckpt_path} ({checkpoint_epoch(ckpt)})")
        print(results_table(res.metrics))
        if dm is not None:
            print(f"delta_m vs single-task: {dm:+.2f}%")
        if saver:
            print(f"predictions written to {args.save_predictions}")
        if exporter:
            print(f"{exporter.count} predictions exported to {args.export}/<task>/")
        if not failure:
            print(f"evaluation saved to {out_json}")
    if failure:
        print(f"note: could not save the evaluation to {out_json} ({failure}); the results above are not saved",
              file=sys.stderr)
    return res.metrics


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "tolist"):
        return x.tolist()
    return x


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


class Exporter:
    """Predictions at the original size in the evaluators' formats, ``DIR/<task>/<id>.<ext>``:
    edge and saliency 8-bit PNGs (``255 * sigmoid``, truncated, as the release
    writes them), semseg / parts label PNGs, normals RGB PNGs
    (``(unit + 1) * 255 / 2``), depth float32 ``.npy`` in metres. A folder
    that already holds files is refused before any work (nothing is
    overwritten); each file is written atomically."""

    def __init__(self, out: Path, tasks: list[str]) -> None:
        self.out, self.tasks, self.count = out, list(tasks), 0
        for t in self.tasks:
            d = out / t
            if d.is_dir() and any(d.iterdir()):
                raise ConfigError(f"--export: {d} already holds files; choose an empty folder (nothing is overwritten)")
            if d.exists() and not d.is_dir():
                raise ConfigError(f"--export: {d} exists and is not a folder")
        try:
            for t in self.tasks:
                (out / t).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"--export: cannot create {out}: {e.strerror or e}") from None
        self.seen: set[str] = set()

    def __call__(self, meta: dict, preds: dict[str, torch.Tensor]) -> None:
        from tsn.engine.geometry import export_value
        from tsn.io import atomic_write_bytes
        from tsn.tasks import get_task

        name = str(meta.get("id", meta.get("index", self.count))).replace("/", "_")
        if name in self.seen:
            raise ConfigError(f"--export: two images share the id {name!r}; nothing would tell them apart")
        self.seen.add(name)
        for t in self.tasks:
            if t not in preds:
                continue
            kind = get_task(t).label  # the label kind knows its file format
            path = self.out / t / f"{name}{kind.export_suffix}"
            try:
                atomic_write_bytes(path, kind.encode(export_value(t, preds[t], meta)))
            except OSError as e:
                raise ConfigError(f"--export: cannot write {path}: {e.strerror or e}") from None
        self.count += 1
