"""``python -m eval tables RUNS_DIR [--out DIR] [--split val|test]``: the paper's
tables from finished runs, as Markdown and LaTeX.

Every ``metrics.json`` under RUNS_DIR is a run, and the tables read that
training record. ``python -m eval`` writes its evaluations beside it under
``evals/``; they are read only for a split that training did not score
(``--split test``: the full evaluation of ``best.pt``). Runs in ``<name>/seed<k>``
folders are seeds of one table row (mean ± sample std over seeds). A sweep's
``sweep.json`` says which suite a row belongs to: ``paper_main`` (and loose
runs) make the main table, ``embedding_ablation`` the code ablation,
``scaling`` the scaling table; add-task runs get a block of their own.

delta_m is computed here from the stored per-task metrics, not read from the
runs, so it is the same formula against the same references whatever the
runs stored: each run is compared with the single-task run it was trained
against (its ``eval.single_task``), else the single-task run of the same
seed, else the mean over the single-task seeds. The paper's numbers (PASCAL-
Context, from ``eval/reference/tsn_iccv2021.json``) are printed beside ours:
a different dataset, so only the ordering of methods is comparable.

``--without TASK`` drops tasks from every run and reference before anything
is computed: the tables and claims then show Δm over the remaining tasks
(e.g. how far one task's column decides a ranking). Per-epoch claims read the
stored per-epoch Δm over all tasks, so they are left undecided in that mode.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from tsn.errors import ConfigError
from tsn.io import atomic_write_json, atomic_write_text
from tsn.metrics import delta_m
from tsn.tasks import get_task, task_names

REFERENCE = Path(__file__).resolve().parent / "reference" / "tsn_iccv2021.json"
METHODS = {  # registry name -> the paper's row label, in the paper's order
    "single_task": "single-task",
    "multi_decoder": "multi-decoder",
    "task_bn": "task-specific BNs",
    "task_in": "task-specific INs",
    "tsn": "TSN",
    "rcm": "RCM",
}
PAPER_LABEL = {"TSN": "TSN (INs + task embedding)"}
CODE_ORDER = ["orthogonal", "gaussian", "onehot", "file"]
SUITE_BLOCK = {"paper_main": "main", "embedding_ablation": "ablation", "scaling": "scaling"}


@dataclass
class Run:
    dir: Path
    group: str  # folder of the row (relative to RUNS_DIR), seeds below it
    seed: int
    metrics: dict[str, Any]
    config: dict[str, Any]
    suite: str | None = None
    label: str | None = None

    @property
    def model(self) -> str:
        return self.metrics.get("model") or self.config.get("model", {}).get("name", "?")

    @property
    def dataset(self) -> str:
        return self.metrics.get("dataset") or self.config.get("data", {}).get("name", "?")

    @property
    def tasks(self) -> list[str]:
        return list(self.metrics.get("tasks") or self.config.get("data", {}).get("tasks", []))

    @property
    def code(self) -> tuple[str, int]:
        """(kind, d) of TSN's task codes: ``model.options.tsn.code`` as resolved configs save it
        (``model.code`` in configs saved before model options existed)."""
        model = self.config.get("model") or {}
        c = ((model.get("options") or {}).get("tsn") or {}).get("code") or model.get("code") or {}
        return c.get("kind", "orthogonal"), int(c.get("dim", 100))

    def results(self, split: str = "val") -> dict[str, dict[str, float]] | None:
        """The training record's results for ``split``; for a split training did
        not score (e.g. test), the full evaluation of ``best.pt`` with the run's
        own protocol from ``evals/`` (``python -m eval RUN --split test``)."""
        if split in self.metrics:
            return self.metrics.get(split)
        return evaluation_results(self.dir, split, self.tasks, self.config)

    @property
    def block(self) -> str:
        if self.metrics.get("added_task"):
            return "added"
        return SUITE_BLOCK.get(self.suite or "", "main")


def evaluation_results(run_dir: Path, split: str, tasks: list[str], config: dict[str, Any]) -> dict | None:
    """Results of ``RUN/evals/<split>-all-<protocol>-best-*.json`` (the whole
    split, every task, no result-changing ``--set``), where ``<protocol>`` is
    the run's configured one; None if there is none."""
    ev = config.get("eval") or {}
    protocol = ev.get("geometry") or "pad"
    edge = ((ev.get("options") or {}).get("edge") or {}).get("protocol") or ev.get("edge_protocol")
    if edge and "edge" in tasks:
        protocol += f"-{edge}"
    found = sorted((run_dir / "evals").glob(f"{split}-all-{protocol}-best-*.json"), key=lambda p: p.stat().st_mtime)
    for path in reversed(found):
        try:
            rec = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if rec.get("kind") == "evaluation" and set(rec.get("results") or {}) == set(tasks):
            return rec["results"]
    return None


def collect(runs_dir: str | Path) -> list[Run]:
    """Every finished run under ``runs_dir`` (metrics.json with per-task results)."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise ConfigError(f"runs folder not found: {runs_dir}")
    runs = []
    for mfile in sorted(root.rglob("metrics.json")):
        d = mfile.parent
        try:
            metrics = json.loads(mfile.read_text())
        except json.JSONDecodeError:
            raise ConfigError(f"{mfile} is not valid JSON") from None
        if not isinstance(metrics, dict) or "val" not in metrics:
            continue
        cfile = d / "config.yaml"
        config = yaml.safe_load(cfile.read_text()) if cfile.is_file() else {}
        m = re.fullmatch(r"seed(\d+)", d.name)
        group_dir = d.parent if m else d
        seed = int(m.group(1)) if m else int(config.get("train", {}).get("seed", 0))
        suite, label = None, None
        manifest = group_dir.parent / "sweep.json"
        if manifest.is_file():
            man = json.loads(manifest.read_text())
            suite = man.get("suite")
            label = next((r.get("label") for r in man.get("runs", []) if r.get("name") == group_dir.name), None)
        group = str(group_dir.relative_to(root)) if group_dir != root else group_dir.name
        runs.append(Run(d, group, seed, metrics, config, suite, label))
    if not runs:
        raise ConfigError(f"no finished runs (metrics.json) under {runs_dir}")
    return runs


def reference_for(run: Run, singles: list[Run], split: str = "val") -> dict[str, dict[str, float]] | None:
    """Per-task single-task results to compare ``run`` with (see the module doc)."""
    pool = [s for s in singles if s.dataset == run.dataset and s.results(split)]
    if not pool:
        return None
    ref_path = (run.config.get("eval") or {}).get("single_task")
    if ref_path:
        p = Path(ref_path)
        p = p.parent if p.name == "metrics.json" else p
        for s in pool:
            if s.dir.resolve() == p.resolve():
                return s.results(split)
    same = [s for s in pool if s.seed == run.seed]
    if same:
        same.sort(key=lambda s: s.suite != "paper_main")
        return same[0].results(split)
    out: dict[str, dict[str, float]] = {}
    for t in {t for s in pool for t in s.results(split)}:
        vals = [s.results(split)[t][get_task(t).headline] for s in pool if t in s.results(split)]
        out[t] = {get_task(t).headline: sum(vals) / len(vals)}
    return out


def run_delta_m(run: Run, singles: list[Run], split: str = "val") -> float | None:
    ref, res = reference_for(run, singles, split), run.results(split)
    if ref is None or not res or any(t not in ref for t in res):
        return None
    return delta_m(res, ref)


# ---------------------------------------------------------------- aggregation


def mean_std(values: list[float]) -> tuple[float, float | None]:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return float("nan"), None
    return sum(vals) / len(vals), (statistics.stdev(vals) if len(vals) > 1 else None)


def fmt(ms: tuple[float, float | None], digits: int = 2) -> str:
    m, s = ms
    if math.isnan(m):
        return "–"
    return f"{m:.{digits}f}" + (f" ± {s:.{digits}f}" if s is not None else "")


def fmt_params(n: float) -> str:
    return "–" if math.isnan(n) else f"{n / 1e6:.3g}"


@dataclass
class Row:
    label: str
    runs: list[Run]
    key: tuple = ()
    cells: dict[str, tuple[float, float | None]] = field(default_factory=dict)


def aggregate(runs: list[Run], singles: list[Run], split: str) -> dict[str, tuple[float, float | None]]:
    """Mean ± std over seeds of each task's headline metric, delta_m and params."""
    cells = {}
    tasks = {t for r in runs for t in (r.results(split) or {})}
    for t in tasks:
        h = get_task(t).headline
        cells[t] = mean_std([r.results(split)[t].get(h) for r in runs if t in (r.results(split) or {})])
    dms = [run_delta_m(r, singles, split) for r in runs]
    if all(r.model == "single_task" for r in runs):
        dms = [None]  # the reference itself
    cells["delta_m"] = mean_std(dms)
    cells["params"] = mean_std([float(r.metrics.get("params", float("nan"))) for r in runs])
    return cells


def grouped(runs: list[Run]) -> dict[str, list[Run]]:
    out: dict[str, list[Run]] = {}
    for r in runs:
        out.setdefault(r.group, []).append(r)
    return out


def build_rows(runs: list[Run], split: str = "val") -> dict[str, list[Row]]:
    """Rows of every block: main, ablation, scaling, added."""
    singles = [r for r in runs if r.model == "single_task"]
    blocks: dict[str, list[Row]] = {"main": [], "ablation": [], "scaling": [], "added": []}
    for group, rs in grouped(runs).items():
        r0 = rs[0]
        block = r0.block
        if block == "main":
            label = r0.label or METHODS.get(r0.model, r0.model)
            if label in [row.label for row in blocks["main"]]:
                label = f"{label} ({group})"
            key = (list(METHODS).index(r0.model) if r0.model in METHODS else 99, group)
        elif block == "ablation":
            kind, dim = r0.code
            label, key = f"{kind}, d={dim}", (CODE_ORDER.index(kind) if kind in CODE_ORDER else 99, dim, group)
        elif block == "scaling":
            label = f"{METHODS.get(r0.model, r0.model)}, {len(r0.tasks)} tasks"
            key = (list(METHODS).index(r0.model) if r0.model in METHODS else 99, len(r0.tasks), group)
        else:
            label, key = group, (group,)
        row = Row(label, sorted(rs, key=lambda r: r.seed), key, aggregate(rs, singles, split))
        blocks[block].append(row)
    for rows in blocks.values():
        rows.sort(key=lambda r: r.key)
    return blocks


# ---------------------------------------------------------------- claims

ROOT = Path(__file__).resolve().parents[1]


def suite_claims(suite_dir: Path) -> list:
    """The claims of the suite in ``suite_dir``: its ``sweep.json``'s, else those of the suite
    file it names (sweeps recorded before suites had claims)."""
    from tsn.claims import parse_claims

    man = json.loads((suite_dir / "sweep.json").read_text())
    if "claims" in man:
        return parse_claims(man["claims"], str(suite_dir / "sweep.json"))
    f = Path(man.get("file") or "")
    f = f if f.is_absolute() else ROOT / f
    if not man.get("file") or not f.is_file():
        return []
    return parse_claims((yaml.safe_load(f.read_text()) or {}).get("claims"), str(f))


def decide_claims(runs: list[Run], split: str = "val") -> list[dict]:
    """Every claim of every suite under the runs, decided from delta_m per run and seed
    (the selected model's, computed as in the tables; per epoch, the training record's)."""
    from tsn.claims import decide

    singles = [r for r in runs if r.model == "single_task"]
    by_dir: dict[Path, dict[int, dict[int | None, float]]] = {}  # run folder -> seed -> epoch -> delta_m
    for r in runs:
        group_dir = (r.dir.parent if re.fullmatch(r"seed\d+", r.dir.name) else r.dir).resolve()
        v = by_dir.setdefault(group_dir, {}).setdefault(r.seed, {})
        v[None] = run_delta_m(r, singles, split)
        for h in r.metrics.get("history") or []:
            if h.get("delta_m") is not None:
                v[int(h["epoch"])] = float(h["delta_m"])
    out = []
    for suite_dir in sorted({d.parent for d in by_dir if (d.parent / "sweep.json").is_file()}):
        suite = json.loads((suite_dir / "sweep.json").read_text()).get("suite", suite_dir.name)
        for c in suite_claims(suite_dir):
            names = {*c.runs, *(c.than or ())}
            vals = {n: by_dir.get((suite_dir / n).resolve(), {}) for n in names}
            out.append({"suite": suite, **decide(c, vals)})
    return out


def _signed(x: float) -> str:
    return f"{x:+.2f}"


def claims_table(decided: list[dict]) -> tuple[list[str], list[list[str]]]:
    head = ["suite", "claim", "per-seed differences (Δm points)", "mean ± std", "t", "p", "verdict"]
    body = []
    for c in decided:
        by_pair: dict[tuple, list[str]] = {}
        for r in c["pairs"]:
            by_pair.setdefault((r["run"], r["than"]), []).append(f"s{r['seed']} {_signed(r['diff'])}")
        if c["within"] is not None:
            diffs = "; ".join(f"{a} − {c['within']:g}: {', '.join(v)}" for (a, _), v in by_pair.items())
        else:
            diffs = "; ".join(f"{a} − {b}: {', '.join(v)}" for (a, b), v in by_pair.items())
        claim = c["claim"] + (f" (epoch {c['epoch']})" if c["epoch"] is not None else "")
        ms = "–" if c["mean"] is None else (_signed(c["mean"]) + ("" if c["std"] is None else f" ± {c['std']:.2f}"))
        body.append([c["suite"], claim, diffs or "no finished pair", ms, "–" if c["t"] is None else f"{c['t']:.2f}",
                     "–" if c["p"] is None else f"{c['p']:.3f}", c["verdict"]])
    return head, body


# ---------------------------------------------------------------- rendering


def load_paper() -> dict:
    return json.loads(REFERENCE.read_text())


def _task_cols(rows: list[Row]) -> list[str]:
    """Task columns in registration order (the paper's column order, then depth, then added tasks)."""
    present = {t for row in rows for t in row.cells}
    return [t for t in task_names() if t in present]


def _head(t: str) -> str:
    spec = get_task(t)
    return f"{t} {spec.headline} {'↑' if spec.higher_is_better else '↓'}"


def main_table(rows: list[Row], paper: dict) -> tuple[list[str], list[list[str]]]:
    tasks = _task_cols(rows)
    by_label = {PAPER_LABEL.get(r["method"], r["method"]): r for r in paper["main_table"]}
    by_label.update({r["method"]: r for r in paper["main_table"]})
    head = ["method", *[_head(t) for t in tasks], "Δm (%) ↓", "params (M)", "seeds", "paper Δm (%)", "paper params (M)"]
    body = []
    for row in rows:
        p = by_label.get(PAPER_LABEL.get(row.label, row.label), {})
        body.append([row.label, *[fmt(row.cells.get(t, (math.nan, None))) for t in tasks], fmt(row.cells["delta_m"]),
                     fmt_params(row.cells["params"][0]), str(len(row.runs)),
                     "–" if p.get("delta_m") is None else f"{p['delta_m']:.2f}", str(p.get("params_M", "–"))])
    return head, body


def ablation_table(rows: list[Row], paper: dict) -> tuple[list[str], list[list[str]]]:
    tasks = _task_cols(rows)
    ref = {(r["codes"], r["d"]): r for r in paper["embedding_ablation"]}
    head = ["codes", *[_head(t) for t in tasks], "Δm (%) ↓", "params (M)", "seeds", "paper Δm (%)"]
    body = []
    for row in rows:
        kind, dim = row.runs[0].code
        p = ref.get((kind, dim))
        body.append([row.label, *[fmt(row.cells.get(t, (math.nan, None))) for t in tasks], fmt(row.cells["delta_m"]),
                     fmt_params(row.cells["params"][0]), str(len(row.runs)), "–" if p is None else f"{p['delta_m']:.2f}"])
    return head, body


def generic_table(rows: list[Row], first: str) -> tuple[list[str], list[list[str]]]:
    tasks = _task_cols(rows)
    head = [first, *[_head(t) for t in tasks], "Δm (%) ↓", "params (M)", "seeds"]
    body = [[row.label, *[fmt(row.cells.get(t, (math.nan, None))) for t in tasks], fmt(row.cells["delta_m"]),
             fmt_params(row.cells["params"][0]), str(len(row.runs))] for row in rows]
    return head, body


def with_trivial(table: tuple[list[str], list[list[str]]], rows: list[Row], trivial: dict | None):
    """The table with the trivial predictor's headline metrics as its first row (``eval trivial --json``)."""
    head, body = table
    if trivial is None:
        return head, body
    res = trivial["results"]
    tasks = _task_cols(rows)
    line = ["trivial predictor", *[f"{res[t][get_task(t).headline]:.2f}" if t in res else "–" for t in tasks]]
    return head, [line + [""] * (len(head) - len(line)), *body]


def added_table(rows: list[Row], split: str, trivial: dict | None = None) -> tuple[list[str], list[list[str]]]:
    head = ["run", "new task", "metric", "added code (ours)", "from scratch", "trivial predictor", "trained params",
            "old tasks bit-identical"]
    body = []
    for row in rows:
        info = [r.metrics["added_task"] for r in row.runs]
        t = info[0]["name"]
        h = get_task(t).headline
        ours = mean_std([r.results(split)[t][h] for r in row.runs])
        scratch = mean_std([i["reference"]["metrics"][h] for i in info if i.get("reference")])
        triv = (trivial or {}).get("results", {}).get(t, {}).get(h)
        body.append([row.label, t, h, fmt(ours), fmt(scratch), "–" if triv is None else f"{triv:.2f}",
                     str(info[0].get("trained_params", "–")),
                     "yes" if all(r.metrics.get("old_tasks_identical") for r in row.runs) else "NO"])
    return head, body


BLOCK_TITLE = {"main": "main", "ablation": "task-code ablation", "scaling": "scaling", "added": "task added"}


def _distinct(values: list[str | None]) -> str:
    """The distinct values in order of first appearance; runs that did not record one are counted."""
    seen = list(dict.fromkeys(v for v in values if v))
    missing = sum(v is None for v in values)
    return ", ".join(seen + ([f"not recorded ({missing})"] if missing else [])) or "–"


def provenance_table(blocks: dict[str, list[Row]]) -> tuple[list[str], list[list[str]]]:
    """Where every row's numbers come from: its suite, its seeds' training wall time, and the
    code, machine and torch each run recorded (``metrics.json`` ``environment``)."""
    head = ["table", "row", "suite", "seeds", "train time per seed (s)", "code", "machine (threads)", "torch"]
    body = []
    for name, rows in blocks.items():
        for row in rows:
            envs = [r.metrics.get("environment") or {} for r in row.runs]
            times = [r.metrics.get("train_time_s") for r in row.runs]
            body.append([
                BLOCK_TITLE[name], row.label, row.runs[0].suite or ("train.add_task" if name == "added" else "–"),
                " / ".join(str(r.seed) for r in row.runs),
                " / ".join("–" if t is None else f"{t:.0f}" for t in times),
                _distinct([e.get("code") for e in envs]),
                _distinct([f"{e['device']} ({e.get('threads', '?')})" if e.get("device") else None for e in envs]),
                _distinct([e.get("torch") for e in envs]),
            ])
    return head, body


def paper_tables(paper: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    tasks = [t for t in task_names() if t in paper["metrics"]]
    hm = [_head(t) for t in tasks]
    main = [[r["method"], *[f"{r[t]:.1f}" for t in tasks], "–" if r["delta_m"] is None else f"{r['delta_m']:.2f}",
             f"{r['params_M']}"] for r in paper["main_table"]]
    abl = [[f"{r['codes']}, d={r['d']}", *[f"{r[t]:.1f}" for t in tasks], f"{r['delta_m']:.2f}"] for r in paper["embedding_ablation"]]
    return [("main", ["method", *hm, "Δm (%) ↓", "params (M)"], main), ("ablation", ["codes", *hm, "Δm (%) ↓"], abl)]


def markdown(head: list[str], body: list[list[str]]) -> str:
    align = ["---" if not any(_numeric(r[i]) for r in body) else "---:" for i in range(1, len(head))]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---", *align]) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines)


def _numeric(cell: str) -> bool:
    return bool(re.match(r"^[-+]?\d", cell))


def _tex(s: str) -> str:
    s = s.replace("\\", "\\textbackslash{}").replace("_", "\\_").replace("%", "\\%").replace("&", "\\&").replace("#", "\\#")
    return (s.replace(" ± ", " $\\pm$ ").replace("±", "$\\pm$").replace("Δm", "$\\Delta_m$")
            .replace("↑", "$\\uparrow$").replace("↓", "$\\downarrow$").replace("–", "--"))


def latex(head: list[str], body: list[list[str]], caption: str) -> str:
    cols = "l" + "r" * (len(head) - 1)
    lines = ["\\begin{table}[t]", "\\centering", "\\small", f"\\caption{{{_tex(caption)}}}",
             f"\\begin{{tabular}}{{{cols}}}", "\\toprule", " & ".join(_tex(h) for h in head) + " \\\\", "\\midrule"]
    lines += [" & ".join(_tex(c) for c in r) + " \\\\" for r in body]
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines)


def check_trivial(trivial: dict, datasets: list[str], split: str, source: str) -> None:
    if not isinstance(trivial, dict) or not isinstance(trivial.get("results"), dict):
        raise ConfigError(f"{source} is not the output of `python -m eval trivial CONFIG --json`")
    if trivial.get("split") != split or datasets != [trivial.get("dataset")]:
        raise ConfigError(f"{source} scores {trivial.get('dataset')}/{trivial.get('split')}; the tables are "
                          f"{', '.join(datasets)}/{split} (run eval trivial on the same dataset and split)")


def render(runs: list[Run], split: str = "val", trivial: dict | None = None,
           trivial_source: str = "the trivial predictor's file", without: list[str] | None = None) -> tuple[str, str, dict]:
    """(Markdown, LaTeX, numbers as JSON) of every block that has rows; with ``trivial``
    (``python -m eval trivial --json`` of the same dataset and split) each table gets its row;
    ``trivial_source`` names it in errors; ``without``: the tasks :func:`without_tasks` left out, named."""
    paper = load_paper()
    blocks = build_rows(runs, split)
    datasets = sorted({r.dataset for r in runs})
    if trivial is not None:
        check_trivial(trivial, datasets, split, trivial_source)
    where = f"{', '.join(datasets)}, {split} split"
    sections = []
    if blocks["main"]:
        sections.append((f"Main table (ours: {where})",
                         *with_trivial(main_table(blocks["main"], paper), blocks["main"], trivial)))
    if blocks["ablation"]:
        sections.append((f"Task-code ablation (ours: {where})",
                         *with_trivial(ablation_table(blocks["ablation"], paper), blocks["ablation"], trivial)))
    if blocks["scaling"]:
        sections.append((f"Scaling with the number of tasks (ours: {where}; Δm over the tasks each row trains)",
                         *with_trivial(generic_table(blocks["scaling"], "method, tasks"), blocks["scaling"], trivial)))
    if blocks["added"]:
        sections.append((f"A task added to a trained TSN (ours: {where})",
                         *added_table(blocks["added"], split, trivial)))
    from tsn.claims import ALPHA, MIN_PAIRS

    decided = decide_claims(runs, split)
    if decided:
        sections.append((f"Claims (the suites' own; difference = claim side − other side, negative = the claim's "
                         f"side better; two-sided t-test of the differences against 0, p < {ALPHA}, at least "
                         f"{MIN_PAIRS} differences)", *claims_table(decided)))
    if any(blocks.values()):
        sections.append(("Provenance (each row's suite: `python -m train.sweep configs/sweeps/SUITE.yaml`; "
                         "training wall time from metrics.json; code = `git describe` of the run)",
                         *provenance_table(blocks)))
    note = (f"Paper's numbers, {paper['dataset']}: a different dataset from ours; compare the ordering of "
            "methods, not the values.")
    for name, head, body in paper_tables(paper):
        if blocks[name]:
            sections.append((f"{'Main table' if name == 'main' else 'Task-code ablation'}: the paper's numbers on PASCAL-Context", head, body))
    scope = f" of every task but {', '.join(without)} (left out with --without)" if without else ""
    md = ["# Results" + (f" without {', '.join(without)}" if without else ""), "",
          f"Mean ± sample std over seeds; Δm in % against the single-task runs (positive = worse, "
          f"the TSN paper's sign), computed from each run's per-task {split} metrics{scope}. {note}", ""]
    tex = [f"% generated by python -m eval tables{scope}; {note}"]
    for title, head, body in sections:
        md += [f"## {title}", "", markdown(head, body), ""]
        tex += [latex(head, body, title), ""]
    numbers = {name: [{"label": r.label, "group": r.key[-1], "seeds": [x.seed for x in r.runs],
                       **{k: {"mean": v[0], "std": v[1]} for k, v in r.cells.items()}} for r in rows]
               for name, rows in blocks.items() if rows}
    if decided:
        numbers["claims"] = decided
    if trivial is not None:
        numbers["trivial"] = trivial["results"]
    return "\n".join(md), "\n".join(tex), numbers


def without_tasks(runs: list[Run], drop: list[str]) -> list[Run]:
    """The runs with ``drop``'s tasks removed from their records (history too: its Δm spans every task)."""
    have = sorted({t for r in runs for t in r.tasks})
    unknown = [t for t in drop if t not in have]
    if unknown:
        raise ConfigError(f"--without {' '.join(unknown)}: no run has that task; the runs' tasks: {', '.join(have)}")
    if len(set(drop)) == len(have):
        raise ConfigError(f"--without {' '.join(drop)} leaves no task to compute Δm over")
    out = []
    for r in runs:
        m = {k: ({t: res for t, res in v.items() if t not in drop} if k in ("val", "test") and isinstance(v, dict) else v)
             for k, v in r.metrics.items()}
        m["tasks"] = [t for t in r.tasks if t not in drop]
        m["history"] = []
        m.pop("delta_m", None)
        out.append(replace(r, metrics=m))
    return [r for r in out if r.tasks]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tables", help="the paper's tables from finished runs (Markdown and LaTeX)")
    p.add_argument("runs_dir", help="folder holding the runs (e.g. runs/sweeps/synthetic)")
    p.add_argument("--out", help="where tables.md / tables.tex / tables.json go (default: RUNS_DIR)")
    p.add_argument("--split", default="val", choices=["val", "test"],
                   help="which stored results (test: after python -m eval RUN --split test)")
    p.add_argument("--trivial", metavar="FILE",
                   help="`python -m eval trivial CONFIG --json` output of the same dataset and split: "
                        "its row goes into every table")
    p.add_argument("--without", nargs="+", default=[], metavar="TASK",
                   help="leave these tasks out of every run and reference: Δm over the others "
                        "(per-epoch claims are then undecided)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> None:
    runs = collect(args.runs_dir)
    if args.split != "val":
        runs = [r for r in runs if r.results(args.split)]
        if not runs:
            raise ConfigError(f"no run under {args.runs_dir} has {args.split} results; run python -m eval RUN --split {args.split}")
    if args.without:
        runs = without_tasks(runs, args.without)
    trivial = None
    if args.trivial:
        try:
            trivial = json.loads(Path(args.trivial).read_text())
        except (OSError, ValueError) as e:
            raise ConfigError(f"--trivial {args.trivial}: cannot read it as JSON ({e})") from None
    md, tex, numbers = render(runs, args.split, trivial, f"--trivial {args.trivial}", args.without)
    out = Path(args.out or args.runs_dir)
    atomic_write_text(out / "tables.md", md + "\n")
    atomic_write_text(out / "tables.tex", tex + "\n")
    atomic_write_json(out / "tables.json", numbers)
    print(md)
    print(f"\nwrote {out / 'tables.md'}, {out / 'tables.tex'} and {out / 'tables.json'}")


__all__ = ["Run", "build_rows", "collect", "reference_for", "render", "run_delta_m", "without_tasks"]
