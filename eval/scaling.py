"""``python -m eval scaling --max-tasks 9 --out DIR``: parameters against the
number of tasks, counted on real model instances (built on the meta device,
so nothing is allocated) -- the paper's scaling figure redrawn."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from tsn.config import ModelConfig
from tsn.io import atomic_write_text
from tsn.models.params import parameter_report
from tsn.data import dataset_info
from tsn.models.registry import build_model, task_channels_for

METHODS = {  # registry name -> label in the paper's figure
    "single_task": "single-task",
    "rcm": "RCM",
    "multi_decoder": "multi-decoder",
    "task_bn": "task-specific BNs",
    "task_in": "task-specific INs",
    "tsn": "TSN",
    # the field's comparison architectures (tsn/models/cross_stitch.py, mtan.py, padnet.py, mtinet.py)
    "cross_stitch": "cross-stitch",
    "nddr": "NDDR-CNN",
    "mtan": "MTAN",
    "padnet": "PAD-Net",
    "mtinet": "MTI-Net",
}
PAPER_METHODS = ("single_task", "rcm", "multi_decoder", "task_bn", "task_in", "tsn")
PASCAL = task_channels_for(list(dataset_info("pascal").tasks), "pascal")  # the five tasks, their channels


def task_set(n: int) -> dict[str, int]:
    """The five PASCAL tasks first, then generic extra tasks (channels do not
    change the count under the paper's averaging head)."""
    tasks = dict(list(PASCAL.items())[:n])
    for i in range(len(tasks), n):
        tasks[f"task{i + 1}"] = 1
    return tasks


def scaling_rows(max_tasks: int, encoder: str = "resnet18", code_dim: int = 100) -> list[dict]:
    rows = []
    for method in METHODS:
        for n in range(1, max_tasks + 1):
            cfg = ModelConfig(name=method, encoder=encoder, head="mean", head_width=21)
            cfg.code.dim = max(code_dim, n)
            with torch.device("meta"):
                model = build_model(cfg, task_set(n))
            rows.append({"method": method, "tasks": n, "params": parameter_report(model)["params"]})
    return rows


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=120)
    markers = dict(zip(METHODS, "osD^vPXh*<>"))
    for method, label in METHODS.items():
        pts = [(r["tasks"], r["params"] / 1e6) for r in rows if r["method"] == method]
        if pts:  # the paper's methods solid, the comparison architectures dashed
            ax.plot(*zip(*pts), marker=markers[method], label=label, linewidth=1.6, markersize=5,
                    linestyle="-" if method in PAPER_METHODS else "--")
    ax.set_xlabel("number of tasks")
    ax.set_ylabel("parameters (M)")
    ax.set_title("Parameters against number of tasks (ResNet-18)")
    ax.set_xticks(sorted({r["tasks"] for r in rows}))
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=7, ncol=2)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scaling", help="parameters against number of tasks (CSV and PNG)")
    p.add_argument("--max-tasks", type=int, default=9)
    p.add_argument("--encoder", default="resnet18")
    p.add_argument("--out", default="scaling")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> None:
    from tsn.errors import ConfigError

    if args.max_tasks < 1:
        raise ConfigError(f"--max-tasks must be at least 1, got {args.max_tasks}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = scaling_rows(args.max_tasks, args.encoder)
    lines = ["method,tasks,params"] + [f"{r['method']},{r['tasks']},{r['params']}" for r in rows]
    atomic_write_text(out / "scaling.csv", "\n".join(lines) + "\n")
    plot(rows, out / "scaling.png")
    last = {r["method"]: r["params"] for r in rows if r["tasks"] == args.max_tasks}
    print(f"wrote {out / 'scaling.csv'} and {out / 'scaling.png'}; at {args.max_tasks} tasks: "
          + ", ".join(f"{METHODS[m]} {p / 1e6:.1f}M" for m, p in last.items()))


__all__ = ["main", "scaling_rows"]
