"""python -m eval grouping --subsets DIR/subsets.json [--tag RUN_DIR] [--tsn RUN_DIR] --budgets 1 2 3 [--out DIR]

Which tasks to train together, from up to four sources, for each budget (in
units of one full network):

1. ``measured``: the networks of ``python -m train.subsets`` (Standley et
   al.), exact selection minimising the sum over tasks of each task's best
   score among the chosen networks;
2. ``pairs``: the same from the higher-order approximation (every group
   estimated from its singles and pairs; measured larger groups kept);
3. ``tag``: TAG affinities (``train.tag_every`` > 0) of a run, budget b ->
   at most floor(b) groups maximising the mean affinity onto each task;
4. ``tsn``: the cosine similarity of a trained TSN's task latents, used as a
   symmetric affinity in the same rule as TAG (similar latents = the tasks
   are expected to help each other; a heuristic, not a measured transfer).

Scores (``--score``): ``rel_loss`` (default) = the task's val loss divided by
its single-task network's, so every task counts alike; ``loss`` = raw
unweighted val loss (Standley et al.'s sum); ``metric`` = relative drop of
the headline metric from the single-task network (positive = worse).  Lower
is better.  Groups chosen by ``pairs``/``tag``/``tsn`` are scored with the
measured networks when all of them were trained (each task served by its
best chosen network), else marked "not trained".  Writes grouping.json and
affinities.png (the matrices side by side, row i onto column j) to --out.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from tsn.errors import ConfigError

SOURCES = {"measured": "measured subsets", "pairs": "pairs estimate", "tag": "TAG", "tsn": "TSN latents"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grouping", help="choose which tasks to train together per budget (subsets, pairs, TAG, TSN)")
    p.add_argument("--subsets", help="subsets.json of python -m train.subsets (or its directory)")
    p.add_argument("--tag", help="run directory (or metrics.json) of a run with train.tag_every > 0")
    p.add_argument("--tsn", help="run directory or checkpoint of a trained TSN")
    p.add_argument("--budgets", nargs="+", type=float, default=[1.0, 2.0, 3.0])
    p.add_argument("--score", choices=["rel_loss", "loss", "metric"], default="rel_loss")
    p.add_argument("--full-singles", action="store_true",
                   help="with both full and half-width singles in the suite, use the full ones (default: the cheaper)")
    p.add_argument("--out", help="directory for grouping.json and affinities.png")
    p.add_argument("--json", action="store_true", help="print grouping.json instead of the report")
    p.set_defaults(func=main)


# ---------------------------------------------------------------- inputs


def _json_file(path: str, name: str) -> dict:
    p = Path(path)
    if p.is_dir():
        p = p / name
    if not p.is_file():
        raise ConfigError(f"no {name} at {p}")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{p} is not valid JSON: {e}") from None


def load_subsets(path: str, full_singles: bool = False) -> dict:
    """{'tasks', 'metrics', 'nets': {group: entry}} with one entry per group."""
    data = _json_file(path, "subsets.json")
    if "networks" not in data or "tasks" not in data:
        raise ConfigError(f"{path} is not a subsets.json of python -m train.subsets (no 'networks'/'tasks')")
    nets: dict[frozenset, dict] = {}
    for n in data["networks"]:
        g = frozenset(n["tasks"])
        old = nets.get(g)
        if old is None or (n["cost"] > old["cost"] if full_singles else n["cost"] < old["cost"]):
            nets[g] = n
    return {"tasks": list(data["tasks"]), "metrics": data.get("metrics", {}), "nets": nets}


def group_scores(sub: dict, score: str) -> dict[frozenset, dict[str, float]]:
    """Per network, per task score (lower is better) in the ``score`` convention."""
    nets = sub["nets"]
    if score == "loss":
        return {g: {t: n["val_loss"][t] for t in g} for g, n in nets.items()}
    single = {t: nets.get(frozenset([t])) for t in sub["tasks"]}
    missing = [t for t, n in single.items() if n is None and any(t in g for g in nets)]
    if missing:
        raise ConfigError(f"--score {score} needs single-task networks; missing: {', '.join(missing)} (try --score loss)")
    out = {}
    for g, n in nets.items():
        row = {}
        for t in g:
            ref = single[t]
            if score == "rel_loss":
                row[t] = n["val_loss"][t] / ref["val_loss"][t] if ref["val_loss"][t] else 1.0
            else:
                m, m0 = n["val_metric"][t], ref["val_metric"][t]
                hib = sub["metrics"].get(t, {}).get("higher_is_better", True)
                row[t] = ((m0 - m) if hib else (m - m0)) / abs(m0) if m0 else 0.0
        out[g] = row
    return out


def pair_affinity(sub: dict) -> dict[str, dict[str, float]] | None:
    """Measured pair transfer 1 - L_j({i,j}) / L_j({j}) (row i onto column j); None without all pairs."""
    nets, tasks = sub["nets"], sub["tasks"]
    out: dict[str, dict[str, float]] = {}
    for i in tasks:
        out[i] = {}
        for j in tasks:
            if i == j:
                out[i][j] = None
                continue
            pair, single = nets.get(frozenset([i, j])), nets.get(frozenset([j]))
            if pair is None or single is None:
                return None
            out[i][j] = 1.0 - pair["val_loss"][j] / single["val_loss"][j] if single["val_loss"][j] else 0.0
    return out


def load_tag(path: str) -> tuple[list[str], dict]:
    data = _json_file(path, "metrics.json")
    if "tag_affinity" not in data:
        raise ConfigError(f"{path}: metrics.json has no tag_affinity; train with --set train.tag_every=K")
    A = data["tag_affinity"]
    return list(data.get("tasks") or A), A


def load_tsn(path: str) -> tuple[list[str], dict]:
    import torch

    from eval.run import load_run
    from tsn.codes import cosine_similarity_matrix

    cfg, model, _ = load_run(path, device="cpu")
    if not hasattr(model, "latents"):
        raise ConfigError(f"{path}: a {cfg.model.name} model has no task latents; --tsn needs a tsn run")
    tasks = list(model.tasks)
    with torch.no_grad():
        S = cosine_similarity_matrix(model.latents(tasks)).tolist()
    return tasks, {i: {j: S[a][b] for b, j in enumerate(tasks)} for a, i in enumerate(tasks)}


# ---------------------------------------------------------------- selection


def _name(g, tasks: list[str]) -> str:
    return "+".join(t for t in tasks if t in g)


def measure(groups, measured: dict[frozenset, dict[str, float]] | None, costs: dict, tasks: list[str]) -> dict:
    """Measured score of training ``groups``: each task served by its best chosen network."""
    if measured is None:
        return {"measured": None, "not_trained": [_name(g, tasks) for g in groups]}
    missing = [_name(g, tasks) for g in groups if frozenset(g) not in measured]
    if missing:
        return {"measured": None, "not_trained": missing}
    per = {t: min(measured[frozenset(g)][t] for g in groups if t in g) for t in tasks}
    return {"measured": sum(per.values()), "measured_per_task": per,
            "measured_cost": sum(costs[frozenset(g)] for g in groups), "not_trained": []}


def _selection(sel, tasks: list[str]) -> dict:
    return {"groups": [_name(g, tasks) for g in sel.groups], "cost": sel.cost, "objective": sel.total,
            "assignment": {t: _name(sel.assignment[t], tasks) for t in tasks}}


def spearman(a: dict, b: dict, tasks: list[str]) -> float | None:
    """Rank correlation of the symmetrised off-diagonal entries (i < j) of two affinity matrices."""
    import numpy as np
    from scipy.stats import spearmanr

    x, y = [], []
    for n, i in enumerate(tasks):
        for j in tasks[n + 1:]:
            x.append((a[i][j] + a[j][i]) / 2)
            y.append((b[i][j] + b[j][i]) / 2)
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(spearmanr(x, y).statistic)


def grouping_report(subsets: dict | None, tag: dict | None, tsn: dict | None, budgets: list[float],
                    score: str = "rel_loss", tasks: list[str] | None = None) -> dict:
    """Everything grouping.json holds: per budget and source the chosen groups and their scores."""
    from tsn.grouping import estimate_from_pairs, select_groups, select_groups_by_affinity

    tasks = list(tasks or (subsets["tasks"] if subsets else (tag or tsn)))
    measured = costs = None
    affinities: dict[str, dict] = {}
    notes: list[str] = []
    if subsets is not None:
        measured = {g: s for g, s in group_scores(subsets, score).items() if g <= set(tasks)}
        costs = {g: float(subsets["nets"][g]["cost"]) for g in measured}
        pa = pair_affinity(subsets)
        if pa is not None:
            affinities["pairs"] = pa
    if tag is not None:
        affinities["tag"] = tag
    if tsn is not None:
        affinities["tsn"] = tsn
    estimate = None
    if measured is not None:
        try:
            estimate = estimate_from_pairs(measured, tasks)
        except ConfigError as e:
            notes.append(f"pairs estimate skipped: {e}")
    est_costs = None
    if estimate is not None:
        est_costs = {g: costs.get(g, 1.0) if len(g) == 1 else 1.0 for g in estimate}

    out = {"tasks": tasks, "score": score, "budgets": {}, "affinities": affinities, "notes": notes, "baselines": {}}
    if measured is not None:
        full = frozenset(tasks)
        if full in measured:
            out["baselines"]["all_together"] = {"groups": [_name(full, tasks)], **measure([full], measured, costs, tasks)}
        singles = [frozenset([t]) for t in tasks]
        if all(g in measured for g in singles):
            out["baselines"]["all_separate"] = {"groups": tasks, **measure(singles, measured, costs, tasks)}
    for b in budgets:
        row: dict[str, dict] = {}
        if measured is not None:
            try:
                sel = select_groups(measured, costs, b)
                row["measured"] = {**_selection(sel, tasks), **measure(sel.groups, measured, costs, tasks)}
            except ConfigError as e:
                row["measured"] = {"infeasible": str(e)}
        if estimate is not None:
            try:
                sel = select_groups(estimate, est_costs, b)
                row["pairs"] = {**_selection(sel, tasks), "predicted": sel.total, **measure(sel.groups, measured, costs, tasks)}
            except ConfigError as e:
                row["pairs"] = {"infeasible": str(e)}
        for src in ("tag", "tsn"):
            if src not in affinities:
                continue
            n = int(math.floor(b + 1e-9))
            if n < 1:
                row[src] = {"infeasible": f"budget {b:g} allows no full network"}
                continue
            sel = select_groups_by_affinity(affinities[src], tasks, n)
            row[src] = {**_selection(sel, tasks), **measure(sel.groups, measured, costs or {}, tasks)}
        out["budgets"][f"{b:g}"] = row
    if "pairs" in affinities:
        out["agreement_with_pairs"] = {s: spearman(affinities[s], affinities["pairs"], tasks)
                                       for s in ("tag", "tsn") if s in affinities}
    return out


# ---------------------------------------------------------------- output


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def print_report(rep: dict) -> None:
    print(f"tasks: {', '.join(rep['tasks'])}; score: {rep['score']} (sum over tasks, lower is better)")
    for note in rep["notes"]:
        print(f"note: {note}")
    base = rep["baselines"]
    for key, label in (("all_together", "all tasks together"), ("all_separate", "all separate")):
        if key in base:
            print(f"{label:>20}: measured {_fmt(base[key]['measured'])} (cost {base[key]['measured_cost']:g})")
    for b, row in rep["budgets"].items():
        print(f"\nbudget {b}")
        for src, r in row.items():
            if "infeasible" in r:
                print(f"  {SOURCES[src]:<17} infeasible: {r['infeasible']}")
                continue
            extra = f"predicted {_fmt(r['predicted'])}, " if "predicted" in r else ""
            meas = (f"measured {_fmt(r['measured'])}" if r["measured"] is not None
                    else f"not trained: {', '.join(r['not_trained'])}")
            print(f"  {SOURCES[src]:<17} {' | '.join(r['groups']):<48} cost {r['cost']:g}; {extra}{meas}")
    if rep.get("agreement_with_pairs"):
        parts = [f"{SOURCES[s]} {_fmt(v)}" for s, v in rep["agreement_with_pairs"].items()]
        print(f"\nSpearman correlation with the measured pair affinities (symmetrised, i<j): {', '.join(parts)}")


def plot_affinities(rep: dict, path: Path) -> None:
    """The affinity matrices side by side (row i onto column j), annotated; diagonal greyed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    titles = {"pairs": "measured pairs\n1 - L_j({i,j}) / L_j({j})", "tag": "TAG look-ahead\nZ(i -> j)",
              "tsn": "TSN latent cosine similarity\ncos(l_i, l_j)"}
    tasks, mats = rep["tasks"], rep["affinities"]
    if not mats:
        return
    n = len(tasks)
    fig, axes = plt.subplots(1, len(mats), figsize=(1.1 * n * len(mats) + 1.5, 1.0 * n + 1.6), squeeze=False)
    for ax, (src, A) in zip(axes[0], mats.items()):
        M = np.array([[A[i][j] for j in tasks] for i in tasks], dtype=float)
        off = M.copy()
        np.fill_diagonal(off, np.nan)
        lim = np.nanmax(np.abs(off)) if np.isfinite(off).any() else 1.0
        lim = lim if lim > 0 else 1.0
        exp = int(math.floor(math.log10(lim))) if lim < 0.01 else 0  # print tiny TAG values as x 1e-k
        M, lim = M / 10.0**exp, lim / 10.0**exp
        ax.imshow(off, cmap="RdBu", vmin=-lim * 10.0**exp, vmax=lim * 10.0**exp)  # blue: i helps j
        for a in range(n):
            for b in range(n):
                if a == b:
                    ax.add_patch(plt.Rectangle((b - 0.5, a - 0.5), 1, 1, color="0.85"))
                    continue
                v = M[a, b]
                txt = f"{v:.2f}"
                ax.text(b, a, txt, ha="center", va="center", fontsize=7,
                        color="white" if abs(v) > 0.6 * lim else "black")
        ax.set_xticks(range(n), tasks, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(n), tasks, fontsize=8)
        ax.set_xlabel("onto task j", fontsize=8)
        ax.set_ylabel("from task i", fontsize=8)
        ax.set_title(titles.get(src, src) + (f"  (x 1e{exp})" if exp else ""), fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(args: argparse.Namespace) -> dict:
    from tsn.io import atomic_write_json

    if not (args.subsets or args.tag or args.tsn):
        raise ConfigError("give at least one of --subsets, --tag, --tsn")
    if any(not math.isfinite(b) or b <= 0 for b in args.budgets):
        raise ConfigError(f"--budgets must be positive numbers, got {args.budgets}")
    subsets = load_subsets(args.subsets, args.full_singles) if args.subsets else None
    tasks = subsets["tasks"] if subsets else None
    mats = {}
    for src, path, loader in (("tag", args.tag, load_tag), ("tsn", args.tsn, load_tsn)):
        if path:
            their, A = loader(path)
            if tasks is None:
                tasks = their
            elif set(their) != set(tasks):
                raise ConfigError(f"--{src} {path} has tasks {', '.join(their)}; the other sources have {', '.join(tasks)}")
            mats[src] = A
    rep = grouping_report(subsets, mats.get("tag"), mats.get("tsn"), args.budgets, args.score, tasks)
    if args.out:
        out = Path(args.out)
        atomic_write_json(out / "grouping.json", rep)
        plot_affinities(rep, out / "affinities.png")
    if args.json:
        print(json.dumps(rep))
    else:
        print_report(rep)
        if args.out:
            print(f"\nwrote {Path(args.out) / 'grouping.json'} and {Path(args.out) / 'affinities.png'}")
    return rep
