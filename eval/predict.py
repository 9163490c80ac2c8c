"""python -m eval predict RUN_DIR_or_CHECKPOINT IMAGES... [--out DIR] [--tasks ...] [--size N|native]
[--device auto] [--batch N] [--format png|npz|both] [--overwrite] [--code FILE]

Predicts every task of a trained network on your own images (files, folders
searched recursively, or globs) in one stacked pass per batch, at each
image's own size, and writes per image ``OUT/<name>.png`` (the input and one
captioned column per task, with class legends) and ``OUT/<name>.npz`` (the
arrays of ``tsn.predict``: class probabilities, edge/saliency probabilities,
unit normals, depth in the dataset's unit). Everything is checked before the
first file is written; an existing file is never replaced without
``--overwrite``; an unreadable image is skipped with one line.
"""

from __future__ import annotations

import argparse
import glob
import io
import sys
from pathlib import Path

import numpy as np

from tsn.errors import ConfigError, DataError

FORMATS = ("png", "npz", "both")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict every task on your own images")
    p.add_argument("path", help="run directory or checkpoint file")
    p.add_argument("images", nargs="+", help="image files, folders (searched recursively) or globs")
    p.add_argument("--out", default="predictions", help="output folder (default: ./predictions)")
    p.add_argument("--tasks", nargs="+", help="only these tasks (default: all the model has)")
    p.add_argument("--size", help="network input: N pixels a side, or 'native' (default: the run's data.size)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, default=8, help="images per stacked pass (default 8)")
    p.add_argument("--format", default="both", choices=FORMATS)
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--code", metavar="FILE", help="a code vector (.npy, .pt or text) driving the one task of --tasks (TSN only)")
    p.set_defaults(func=main)


def collect_images(args: list[str]) -> list[tuple[Path, str]]:
    """``(file, output name)`` per image, in a stable order. A folder's images
    keep their relative path as the name, so equal file names in subfolders do
    not collide; a path that names nothing is an error."""
    from tsn.inference import IMAGE_EXTENSIONS

    found: list[tuple[Path, str]] = []
    for a in args:
        p = Path(a).expanduser()
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            if not files:
                raise DataError(f"{a}: the folder holds no image ({', '.join(IMAGE_EXTENSIONS)})")
            found += [(f, f.relative_to(p).with_suffix("").as_posix()) for f in files]
        elif p.is_file():
            found.append((p, p.stem))
        elif any(c in a for c in "*?["):
            files = sorted(Path(f) for f in glob.glob(str(p), recursive=True) if Path(f).is_file())
            if not files:
                raise DataError(f"{a}: the pattern matches no file")
            found += [(f, f.stem) for f in files]
        else:
            raise DataError(f"{a}: no such file or folder")
    seen: dict[str, Path] = {}
    unique = []
    for f, name in found:
        if name in seen:
            if seen[name].resolve() == f.resolve():
                continue  # the same file named twice
            raise DataError(f"{seen[name]} and {f} would both write {name}.*; predict them in separate calls")
        seen[name] = f
        unique.append((f, name))
    return unique


def load_code(path: str) -> np.ndarray:
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"--code: no such file {path}")
    try:
        if p.suffix == ".npy":
            return np.load(p).astype(np.float32).reshape(-1)
        if p.suffix in (".pt", ".pth"):
            import torch

            return torch.as_tensor(torch.load(p, map_location="cpu", weights_only=True)).float().reshape(-1).numpy()
        return np.loadtxt(p, dtype=np.float32, delimiter=None if "," not in p.read_text() else ",").reshape(-1)
    except Exception as e:  # noqa: BLE001 - any unreadable code file is the same user error
        raise ConfigError(f"--code: cannot read {path} as a vector ({type(e).__name__})") from None


def _write(path: Path, data: bytes) -> None:
    from tsn.io import _atomic

    _atomic(path, lambda f: f.write(data))


def _npz(pred: dict[str, np.ndarray], image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **pred, image_size=np.array(image.shape[:2], np.int64))
    return buf.getvalue()


def main(args: argparse.Namespace) -> dict:
    from tqdm import tqdm

    from tsn.inference import check_tasks, iter_predict, parse_size, render_panel
    from tsn.runs import load_run_checkpoint

    if args.batch < 1:
        raise ConfigError(f"--batch must be at least 1, got {args.batch}")
    size = parse_size(args.size) if args.size is not None else None  # a bad size fails before the run loads
    cfg, model, ckpt = load_run_checkpoint(args.path, args.device)
    tasks = check_tasks(model, args.tasks)
    if args.size is None:
        size = model.input_size
    code = load_code(args.code) if args.code else None
    images = collect_images(args.images)
    out = Path(args.out)
    exts = {"png": [".png"], "npz": [".npz"], "both": [".png", ".npz"]}[args.format]
    targets = [out / f"{name}{e}" for _, name in images for e in exts]
    if not args.overwrite:
        existing = [t for t in targets if t.exists()]
        if existing:
            more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
            raise DataError(f"{existing[0]} exists{more}; pass --overwrite or another --out")
    try:
        from tsn.data import dataset_info

        class_names = {k: list(v) for k, v in dataset_info(cfg.data.name).class_names.items()}
    except Exception:  # noqa: BLE001 - names are a courtesy; ids are shown without them
        class_names = {}
    skipped: list[str] = []

    def on_error(i: int, e: Exception) -> None:
        skipped.append(str(images[i][0]))
        tqdm.write(f"skipped {e}", file=sys.stderr)
        bar.update(1)

    bar = tqdm(total=len(images), desc="predict", unit="img", disable=not sys.stderr.isatty(), dynamic_ncols=True)
    written = 0
    for i, image, pred in iter_predict(model, (f for f, _ in images), tasks, size, model.input_geometry, code,
                                       args.batch, on_error=on_error):
        f, name = images[i]
        if args.format in ("png", "both"):
            _write(out / f"{name}.png", render_panel(image, pred, class_names, title=f.name))
        if args.format in ("npz", "both"):
            _write(out / f"{name}.npz", _npz(pred, image))
        written += 1
        bar.update(1)
    bar.close()
    if not written:
        raise DataError(f"none of the {len(images)} images could be read; nothing written")
    note = f"; {len(skipped)} unreadable image{'s' if len(skipped) != 1 else ''} skipped" if skipped else ""
    what = {"png": "panels", "npz": "arrays", "both": "panels and arrays"}[args.format]
    print(f"{what} of {written} image{'s' if written != 1 else ''} ({', '.join(tasks)}) written to {out}{note}")
    return {"written": written, "skipped": skipped, "out": str(out)}
