"""``python -m eval records RUNS_DIR --out DIR``: the records of every finished
run under RUNS_DIR, without checkpoints, into DIR (same relative paths).

A run's record is what the tables and figures read: ``metrics.json`` (the
training record), ``config.yaml`` (the resolved config), ``log.txt`` and its
evaluation records (``evals/*.json``), plus every suite's ``sweep.json``.
They are small enough to commit, so results outlive the machine that made
them: ``python -m eval tables DIR`` gives the same tables as on RUNS_DIR.
A run's record already in DIR is never replaced by a different one (one line
names it). A suite's ``sweep.json`` describes the suite, not a result, so a
changed one (the suite grew) replaces the old one, atomically, and is named.
"""

from __future__ import annotations

import argparse
import filecmp
from pathlib import Path

from tsn.errors import ConfigError
from tsn.io import atomic_write_bytes

RECORD_FILES = ("metrics.json", "config.yaml", "log.txt")
MANIFEST = "sweep.json"


def record_files(runs_dir: Path) -> list[Path]:
    """The record files under ``runs_dir``, relative to it, in a stable order."""
    files: set[Path] = set()
    for mfile in runs_dir.rglob("metrics.json"):
        run = mfile.parent
        files.update(run / n for n in RECORD_FILES if (run / n).is_file())
        files.update((run / "evals").glob("*.json"))
    files.update(runs_dir.rglob(MANIFEST))
    return sorted(p.relative_to(runs_dir) for p in files)


def copy_records(runs_dir: str | Path, out: str | Path) -> tuple[int, int, list[Path]]:
    """Copy the records; returns (copied, already there, manifests replaced).
    Conflicts are checked before anything is written, so a refused copy writes nothing."""
    src, dst = Path(runs_dir), Path(out)
    if not src.is_dir():
        raise ConfigError(f"runs folder not found: {runs_dir}")
    rel = record_files(src)
    if not any(p.name == "metrics.json" for p in rel):
        raise ConfigError(f"no finished runs (metrics.json) under {runs_dir}")
    same = {p for p in rel if (dst / p).exists()}
    replaced = []
    for p in sorted(same):
        if (dst / p).is_file() and filecmp.cmp(src / p, dst / p, shallow=False):
            continue
        if p.name == MANIFEST and (dst / p).is_file():
            replaced.append(p)
        else:
            raise ConfigError(f"{dst / p} exists and differs from {src / p}; records are never replaced "
                              "(choose another --out, or remove that run's folder there)")
    todo = [p for p in rel if p not in same]
    for p in todo + replaced:
        atomic_write_bytes(dst / p, (src / p).read_bytes())  # a reader never sees half a record
    return len(todo), len(same) - len(replaced), replaced


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("records", help="copy finished runs' records (no checkpoints) to a folder to keep")
    p.add_argument("runs_dir", help="folder holding the runs (e.g. runs/sweeps/synthetic)")
    p.add_argument("--out", required=True, help="where the records go (e.g. docs/results/main_scale/runs)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> None:
    copied, kept, replaced = copy_records(args.runs_dir, args.out)
    for p in replaced:
        print(f"{Path(args.out) / p}: the suite changed; its manifest replaced")
    print(f"{copied} record file(s) copied to {args.out}, {kept} already there, {len(replaced)} manifest(s) replaced")
