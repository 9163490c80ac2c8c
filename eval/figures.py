"""``python -m eval figures RUNS_DIR [--out DIR] [--run TSN_RUN]``: the paper's
figures from finished runs, as PNG.

- ``convergence.png``: validation delta_m against epoch for TSN,
  task-specific INs and task-specific BNs (the paper's claim that the task
  embedding converges faster), mean over seeds with the min-max band. delta_m
  is recomputed from each history entry's per-task metrics against the FINAL
  metrics of the single-task run the table uses, a fixed yardstick (against
  single-task at the same epoch the curve would mix in the single-task
  network's own convergence). The untrained epoch 0 is left out of the
  y-range's way.
- ``latent_similarity.png``: cosine similarity between the learned task
  latents l_t = C(v_t) of a TSN run (``--run``, default the first TSN seed
  of the main table), an annotated heatmap (the paper's task-embedding
  similarity figure); the matrix also goes to ``latent_similarity.json``.
- ``collapse.png`` (when collapse_main has runs): the same curves for TSN,
  the paper's task-specific INs / BNs and collapse_main's variants of them.
- ``scaling_tasks.png`` (when the scaling suite has runs): delta_m and
  parameters against the number of tasks for TSN and multi-decoder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from eval.tables import METHODS, Run, build_rows, collect, reference_for
from tsn.errors import ConfigError
from tsn.io import atomic_write_json
from tsn.metrics import delta_m

CONVERGENCE = ["tsn", "multi_decoder", "task_in", "task_bn"]
COLORS = {"tsn": "C0", "task_in": "C1", "task_bn": "C2", "multi_decoder": "C3", "single_task": "C4"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp)
    _plt().close(fig)
    tmp.replace(path)
    return path


def history_delta_m(run: Run, singles: list[Run]) -> list[tuple[int, float]]:
    """(epoch, delta_m) of every validation after epoch 0 in the run's history."""
    ref = reference_for(run, singles)
    if ref is None:
        return []
    out = []
    for h in run.metrics.get("history", []):
        if h.get("epoch", 0) < 1 or any(t not in ref for t in h.get("val", {})):
            continue
        out.append((h["epoch"], delta_m(h["val"], ref)))
    return out


def convergence_curves(runs: list[Run], suites: tuple[str, ...] = ("paper_main",),
                       models: list[str] = CONVERGENCE) -> list[tuple[str, str, list[dict[int, float]]]]:
    """(label, model, one {epoch: delta_m} per seed) for every row of the main
    table whose model is one of ``models``, one curve per run folder (so a
    variant such as collapse_main's task INs is not pooled with the paper's);
    only the rows of ``suites``, when there are any."""
    singles = [r for r in runs if r.model == "single_task"]
    if not singles:
        raise ConfigError("the convergence figure needs a finished single-task run under RUNS_DIR (for delta_m)")
    main = [r for r in runs if r.block == "main" and r.model in models]
    if not main:
        raise ConfigError(f"no finished {', '.join(METHODS[m] for m in models)} run of the main table")
    if any(r.suite in suites for r in main):
        main = [r for r in main if r.suite in suites]
    groups: dict[str, list[Run]] = {}
    for r in sorted(main, key=lambda r: (models.index(r.model), r.suite != suites[0], r.group, r.seed)):
        groups.setdefault(r.group, []).append(r)
    out = []
    for rs in groups.values():
        curves = [c for c in (dict(history_delta_m(r, singles)) for r in rs) if c]
        if curves:
            out.append((rs[0].label or METHODS[rs[0].model], rs[0].model, curves))
    return out


def convergence(runs: list[Run], path: Path, suites: tuple[str, ...] = ("paper_main",),
                models: list[str] = CONVERGENCE, title: str = "Convergence") -> Path:
    """Validation delta_m against epoch, one curve per row (mean over seeds, min-max band)."""
    curves_by_row = convergence_curves(runs, suites, models)
    plt = _plt()
    many = len(curves_by_row) > 5  # then the legend goes beside the axes
    fig, ax = plt.subplots(figsize=(9.5 if many else 6, 4.2), dpi=120)
    used: set[str] = set()
    extra = iter(plt.get_cmap("tab20").colors[1::2] + plt.get_cmap("tab20b").colors[::2])  # never a C0-C4 twin
    for label, model, curves in curves_by_row:
        color = COLORS[model] if model not in used else next(extra)
        used.add(model)
        epochs = sorted(set.intersection(*(set(c) for c in curves)))
        mean = [sum(c[e] for c in curves) / len(curves) for e in epochs]
        ax.plot(epochs, mean, marker="o", markersize=3.5, color=color,
                label=f"{label} ({len(curves)} seed{'s' if len(curves) > 1 else ''})")
        if len(curves) > 1:
            ax.fill_between(epochs, [min(c[e] for c in curves) for e in epochs],
                            [max(c[e] for c in curves) for e in epochs], color=color, alpha=0.18, linewidth=0)
    ax.axhline(0, color="0.4", linewidth=0.8, linestyle="--")
    ax.set_yscale("symlog", linthresh=10)  # early epochs sit at hundreds of %, the verdicts near 0
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("validation Δm (%) vs single-task (symlog; lower = better)", fontsize=8.5)
    ax.set_title(f"{title} on {runs[0].dataset}")
    ax.grid(alpha=0.3)
    if many:
        ax.legend(frameon=False, fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(frameon=False)
    fig.tight_layout()
    return _save(fig, path)


def learned_latents(run_dir: str | Path) -> tuple[list[str], "object"]:
    """(task names, [T, d] latents l_t) of a trained TSN."""
    import torch

    from eval.run import load_run
    from tsn.models.tsn import TaskSwitchingNet

    cfg, model, _ = load_run(run_dir, device="cpu")
    if not isinstance(model, TaskSwitchingNet):
        raise ConfigError(f"{run_dir} holds a {cfg.model.name} model; task latents exist only in a TSN")
    with torch.no_grad():
        return model.tasks, model.latents().float()


def latent_similarity(run_dir: str | Path, path: Path) -> dict:
    """Annotated heatmap of the cosine similarity between the task latents."""
    from tsn.codes import cosine_similarity_matrix

    tasks, lat = learned_latents(run_dir)
    sim = cosine_similarity_matrix(lat).numpy()
    plt = _plt()
    n = len(tasks)
    fig, ax = plt.subplots(figsize=(1.1 * n + 2.2, 1.0 * n + 1.6), dpi=120)
    im = ax.imshow(sim, cmap="viridis", vmin=min(0.0, float(sim.min())), vmax=1.0)
    ax.set_xticks(range(n), tasks, rotation=35, ha="right")
    ax.set_yticks(range(n), tasks)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{sim[i, j]:.2f}", ha="center", va="center", fontsize=9,
                    color="black" if sim[i, j] > 0.6 else "white")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="cosine similarity")
    rd = Path(run_dir)
    ax.set_title(f"Task latents $l_t$, cosine similarity ({rd.parent.name + '/' if rd.name.startswith('seed') else ''}{rd.name})",
                 fontsize=10)
    fig.tight_layout()
    _save(fig, path)
    return {"run": str(run_dir), "tasks": tasks, "cosine_similarity": sim.round(6).tolist()}


def scaling_tasks(runs: list[Run], path: Path) -> Path | None:
    """delta_m and parameters against the number of tasks (scaling suite)."""
    rows = build_rows(runs)["scaling"]
    if not rows:
        return None
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4), dpi=120)
    for model in ["tsn", "multi_decoder"]:
        pts = sorted((len(r.runs[0].tasks), r.cells["delta_m"], r.cells["params"][0]) for r in rows if r.runs[0].model == model)
        if not pts:
            continue
        ks = [p[0] for p in pts]
        dm = [p[1][0] for p in pts]
        err = [p[1][1] or 0.0 for p in pts]
        a1.errorbar(ks, dm, yerr=err, marker="o", capsize=3, color=COLORS[model], label=METHODS[model])
        a2.plot(ks, [p[2] / 1e6 for p in pts], marker="o", color=COLORS[model], label=METHODS[model])
    a1.axhline(0, color="0.4", linewidth=0.8, linestyle="--")
    a1.set_ylabel("Δm (%) vs single-task (lower is better)")
    a2.set_ylabel("parameters (M)")
    for ax in (a1, a2):
        ax.set_xlabel("number of tasks")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(f"Scaling with the number of tasks ({rows[0].runs[0].dataset})")
    fig.tight_layout()
    return _save(fig, path)


def default_tsn_run(runs: list[Run]) -> Run | None:
    """The paper's figure is of its TSN: paper_main's before any other suite's (e.g. comparison's
    all-tasks TSN), then the most tasks, then folder and seed."""
    tsn = [r for r in runs if r.model == "tsn" and r.block == "main"] or [r for r in runs if r.model == "tsn"]
    tsn.sort(key=lambda r: (r.suite != "paper_main", -len(r.tasks), r.group, r.seed))
    return tsn[0] if tsn else None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("figures", help="convergence, task-latent similarity and scaling figures (PNG)")
    p.add_argument("runs_dir", help="folder holding the runs (e.g. runs/sweeps/synthetic)")
    p.add_argument("--out", help="where the PNGs go (default: RUNS_DIR/figures)")
    p.add_argument("--run", help="TSN run for the latent similarity (default: the first TSN seed of the main table)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> list[Path]:
    runs = collect(args.runs_dir)
    out = Path(args.out or Path(args.runs_dir) / "figures")
    written = []
    if any(r.model in CONVERGENCE and r.block == "main" for r in runs):
        written.append(convergence(runs, out / "convergence.png"))
    if any(r.suite == "collapse_main" for r in runs):  # the collapse's fixes beside the paper's task norms and TSN
        written.append(convergence(runs, out / "collapse.png", ("paper_main", "collapse_main"),
                                   ["tsn", "task_in", "task_bn"], "Task-specific IN/BN and the fixes"))
    tsn_dir = args.run or (default_tsn_run(runs).dir if default_tsn_run(runs) else None)
    if tsn_dir is not None and args.run is None and not any((Path(tsn_dir) / "checkpoints" / n).is_file()
                                                            for n in ("best.pt", "last.pt")):
        print(f"latent similarity skipped: {tsn_dir} holds records without checkpoints (give --run RUN_DIR)")
        tsn_dir = None
    if tsn_dir is not None:
        sim = latent_similarity(tsn_dir, out / "latent_similarity.png")
        written += [out / "latent_similarity.png", atomic_write_json(out / "latent_similarity.json", sim)]
    p = scaling_tasks(runs, out / "scaling_tasks.png")
    if p is not None:
        written.append(p)
    if not written:
        raise ConfigError(f"nothing to draw under {args.runs_dir}: no TSN, task-specific IN/BN or scaling runs")
    print("wrote " + ", ".join(str(w) for w in written))
    return written


__all__ = ["convergence", "history_delta_m", "latent_similarity", "learned_latents", "scaling_tasks"]
