"""python -m train.subsets CONFIG.yaml --out DIR [--max-size 2] [--with-all] [--groups a+b ...]
                            [--half-width-singles] [--set-from SUITE.yaml] [--set key=value ...]

Trains one network per task subset (Standley et al., ICML 2020): every
single and pair by default (``--max-size N``: all subsets of up to N tasks;
``--with-all``: also the network of all tasks; ``--groups``: these subsets
too).  Each network is the config's model (Standley used a shared encoder
with one decoder per task, i.e. ``multi_decoder``; ``single_task`` is
refused as it shares nothing) trained on the subset's tasks with everything
else unchanged, in ``DIR/<task+task>``.  Finished networks (metrics.json
present) are skipped, interrupted ones resumed from checkpoints/last.pt.
Then ``DIR/subsets.json`` lists every finished network in DIR: its tasks,
cost (1 per full network, 0.5 for a half-width single) and each task's
validation loss and headline metric at the final validation (last epoch;
the same for every network, unlike best.pt, whose selection criterion
depends on the subset's first task).

``--half-width-singles`` trains single-task networks at half width (encoder
width, skip/up widths and head width halved; dirs ``<task>.half``, cost 0.5).
Note that under ``train.sampling: paper`` a network of k tasks takes k times
the steps of a single per epoch; ``sampling: all`` gives every network the
same number of steps.  ``--set-from`` applies a sweep suite's ``set`` list
(e.g. configs/sweeps/grouping.yaml) before ``--set``.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import sys
import time
from pathlib import Path

from tsn.errors import ConfigError, TSNError

MARKER = "subset.json"


def subset_dir_name(tasks: list[str], half: bool = False) -> str:
    return "+".join(tasks) + (".half" if half else "")


def half_width(model_cfg) -> None:
    """Halve the encoder width, the decoder's skip/up widths and the head width, in place."""
    m = model_cfg
    m.encoder_width = max(1, m.encoder_width // 2)
    m.skip_widths = [max(1, w // 2) for w in m.skip_widths]
    m.up_widths = [max(1, w // 2) for w in m.up_widths]
    if m.head_width is not None:
        m.head_width = max(1, m.head_width // 2)


def subset_config(base, tasks: list[str], half: bool = False):
    """The base config restricted to ``tasks`` (loss weights filtered), optionally at half width."""
    from tsn.config import validate

    cfg = copy.deepcopy(base)
    cfg.data.tasks = list(tasks)
    cfg.loss.weights = {t: w for t, w in cfg.loss.weights.items() if t in tasks}
    if isinstance(cfg.data.label_drop, dict):
        cfg.data.label_drop = {t: v for t, v in cfg.data.label_drop.items() if t in tasks}
    if cfg.eval.select_metric and cfg.eval.select_metric.split("/", 1)[0] not in tasks:
        cfg.eval.select_metric = None
    cfg.eval.single_task = None  # delta_m would need references for exactly these tasks
    if half:
        half_width(cfg.model)
    cfg.name = subset_dir_name(tasks, half)
    validate(cfg)
    return cfg


def plan(tasks: list[str], max_size: int, with_all: bool, groups: list[str], half_singles: bool) -> list[tuple[list[str], bool]]:
    """(tasks in config order, half width) of every network to train, smallest first."""
    chosen: list[frozenset[str]] = [frozenset(c) for r in range(1, min(max_size, len(tasks)) + 1)
                                    for c in itertools.combinations(tasks, r)]
    if with_all:
        chosen.append(frozenset(tasks))
    for g in groups:
        names = [t for t in g.replace(",", "+").split("+") if t]
        bad = [t for t in names if t not in tasks]
        if bad or not names:
            raise ConfigError(f"--groups {g!r}: {', '.join(bad) or 'no tasks'} not in data.tasks ({', '.join(tasks)})")
        chosen.append(frozenset(names))
    out, seen = [], set()
    for g in sorted(set(chosen), key=lambda g: (len(g), [tasks.index(t) for t in sorted(g, key=tasks.index)])):
        if g not in seen:
            seen.add(g)
            out.append(([t for t in tasks if t in g], half_singles and len(g) == 1))
    return out


def train_subset(base, tasks: list[str], half: bool, out: Path, quiet: bool = True) -> str:
    """Train (or resume, or skip) one subset network; returns 'done', 'resumed' or 'trained'."""
    from tsn.config import load_config, to_dict
    from tsn.engine.trainer import Trainer
    from tsn.io import atomic_write_json

    cfg = subset_config(base, tasks, half)
    run = out / subset_dir_name(tasks, half)
    saved = run / "config.yaml"
    if saved.is_file() and to_dict(load_config(saved)) != to_dict(cfg):
        raise ConfigError(f"{run} holds a run with a different config; use another --out or remove it")
    if (run / "metrics.json").is_file():
        return "done"
    resume = (run / "checkpoints" / "last.pt").is_file()
    atomic_write_json(run / MARKER, {"tasks": tasks, "half_width": half, "cost": 0.5 if half else 1.0})
    Trainer(cfg, run, resume=resume, quiet=quiet).fit()
    return "resumed" if resume else "trained"


def final_scores(metrics: dict) -> tuple[dict[str, float], dict[str, float]]:
    """Per-task (val loss, headline metric) of the last validation in a run's metrics.json."""
    from tsn.tasks import get_task

    last = metrics["history"][-1] if metrics.get("history") else metrics
    loss = {t: float(v) for t, v in last["val_loss"].items()}
    metric = {t: float(last["val"][t][get_task(t).headline]) for t in last["val"]}
    return loss, metric


def collect(out: Path, tasks: list[str]) -> dict:
    """subsets.json content: every finished network under ``out``."""
    from tsn.tasks import get_task

    nets = []
    for marker in sorted(out.glob(f"*/{MARKER}")):
        run = marker.parent
        if not (run / "metrics.json").is_file():
            continue
        info = json.loads(marker.read_text())
        if not set(info["tasks"]) <= set(tasks):
            continue
        m = json.loads((run / "metrics.json").read_text())
        loss, metric = final_scores(m)
        nets.append({"name": run.name, "tasks": info["tasks"], "cost": info["cost"], "half_width": info["half_width"],
                     "val_loss": loss, "val_metric": metric, "params": m.get("params"),
                     "train_time_s": m.get("train_time_s"), "steps": m.get("steps")})
    nets.sort(key=lambda n: (len(n["tasks"]), [tasks.index(t) for t in n["tasks"]], n["cost"]))
    return {"tasks": tasks, "score_source": "last validation (val_loss: unweighted criterion loss)",
            "metrics": {t: {"name": get_task(t).headline, "higher_is_better": get_task(t).higher_is_better} for t in tasks},
            "networks": nets}


def suite_overrides(path: str | None) -> list[str]:
    """The ``set`` list of a sweep suite YAML (empty without one)."""
    if not path:
        return []
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--set-from: no such file {p}")
    data = yaml.safe_load(p.read_text()) or {}
    sets = data.get("set", []) if isinstance(data, dict) else None
    if not isinstance(sets, list) or not all(isinstance(v, str) for v in sets):
        raise ConfigError(f"--set-from {p}: its `set` must be a list of key=value strings")
    return sets


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.subsets", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--out", required=True, help="suite directory (one run dir per subset, subsets.json)")
    p.add_argument("--max-size", type=int, default=2, help="train every subset of up to this many tasks (0: none)")
    p.add_argument("--with-all", action="store_true", help="also train the network of all tasks")
    p.add_argument("--groups", nargs="+", default=[], metavar="A+B", help="also train these subsets")
    p.add_argument("--half-width-singles", action="store_true", help="single-task networks at half width (cost 0.5)")
    p.add_argument("--set-from", metavar="SUITE.yaml", help="apply this sweep suite's `set` overrides first")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--dry-run", action="store_true", help="list the networks and exit")
    p.add_argument("--verbose", action="store_true", help="log each run's progress")
    args = p.parse_args(argv)
    try:
        from tsn.config import load_config
        from tsn.io import atomic_write_json

        base = load_config(args.config, suite_overrides(args.set_from) + args.set)
        if base.model.name == "single_task":
            raise ConfigError("subset networks must share parameters between tasks; use multi_decoder or tsn, not single_task")
        if args.max_size < 0:
            raise ConfigError(f"--max-size must be >= 0, got {args.max_size}")
        tasks = list(base.data.tasks)
        todo = plan(tasks, args.max_size, args.with_all, args.groups, args.half_width_singles)
        if not todo:
            raise ConfigError("no subsets to train: give --max-size >= 1, --with-all or --groups")
        out = Path(args.out)
        for i, (sub, half) in enumerate(todo, 1):
            name = subset_dir_name(sub, half)
            if args.dry_run:
                print(name)
                continue
            t0 = time.time()
            state = train_subset(base, sub, half, out, quiet=not args.verbose)
            print(f"[{i}/{len(todo)}] {name}: {'finished already, skipped' if state == 'done' else state} "
                  f"({time.time() - t0:.0f}s)", flush=True)
        if not args.dry_run:
            atomic_write_json(out / "subsets.json", collect(out, tasks))
            print(f"wrote {out / 'subsets.json'}")
    except TSNError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
