"""python -m train.sweep SUITE.yaml [--dataset synthetic|pascal|nyud] [--out DIR] [--set k=v ...] [--only NAME ...]
                                  [--seeds 0 1] [--dry-run]

Runs a named set of configs, one after another in this process, each for
every seed of the suite. Run directories are ``OUT/<run name>/seed<k>``; a run
whose ``metrics.json`` exists is finished and skipped, one with
``checkpoints/last.pt`` but no ``metrics.json`` was interrupted and is resumed,
anything else starts afresh. So the same command continues a sweep after a
crash or a Ctrl-C.

Several processes may run the same command side by side (one per core, or one
per GPU): each run is claimed by an exclusive lock (``OUT/<run>/.seed<k>.lock``,
``flock``, released by the kernel when its holder dies, so a killed process
leaves no stale claim), a run claimed by another process is left to it, and
a run whose reference is training elsewhere waits for it. Each process prints
what it trained; ``--dry-run`` shows the whole suite's state.

Suite YAML::

    name: paper_main
    configs: {synthetic: configs/synthetic, pascal: configs/pascal}  # per dataset, relative to the repo
    seeds: [0, 1]
    set: [train.epochs=8]            # optional, applied to every run (before the run's own set)
    reference: single_task           # optional: the single-task run giving delta_m, a run name of
                                     # this suite or a path relative to OUT (e.g. ../paper_main/single_task)
    claims:                          # optional: decided by python -m eval tables (tsn/claims.py)
      - {claim: "TSN better than multi-decoder", runs: [tsn], than: [multi_decoder]}
    runs:
      - {name: single_task, config: single_task.yaml}
      - {name: tsn, config: tsn.yaml, set: [model.options.tsn.code.dim=100]}
      - {name: tsn_k2, config: tsn.yaml, tasks: [semseg, normals]}   # tasks: data.tasks, loss weights cut to them
      - {name: tsn_d100, config: tsn.yaml, same_as: ../paper_main/tsn}  # reused, see below

``same_as`` (a run folder relative to OUT, like a reference) names a run of
another suite that may already be this one: when that run of the same seed
has finished and its saved config equals this run's resolved config (all but
``name``), its records are copied here and its checkpoints linked, instead of
training the same network twice; while it trains in another process this
run waits for it; otherwise (not there, or a different config, e.g. another
``--set``) this run is trained here and the log says why.

Override order: the config file, the suite's ``set``, the run's ``set``, the
run's ``tasks``, ``--set`` on the command line, then ``train.seed`` and
``eval.single_task`` (the reference run of the same seed, so that every
metrics.json carries delta_m and best.pt is selected by it). Reference runs
go first. ``OUT/sweep.json`` records the suite for ``python -m eval tables``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tsn.errors import ConfigError, TSNError
from tsn.config import read_yaml_mapping

ROOT = Path(__file__).resolve().parents[1]
SUITE_KEYS = {"name", "configs", "seeds", "set", "runs", "reference", "description", "claims"}
RUN_KEYS = {"name", "config", "set", "tasks", "label", "same_as"}


@dataclass
class RunSpec:
    name: str
    config: str
    set: list[str] = field(default_factory=list)
    tasks: list[str] | None = None
    label: str | None = None
    same_as: str | None = None  # a finished run of another suite (relative to OUT) to reuse if its config is this one


@dataclass
class Suite:
    name: str
    configs: dict[str, str]
    seeds: list[int]
    runs: list[RunSpec]
    set: list[str] = field(default_factory=list)
    reference: str | None = None
    path: Path | None = None
    claims: list = field(default_factory=list)  # tsn.claims.Claim, decided by python -m eval tables


def _str_list(value, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of key=value strings, got {value!r}")
    return list(value)


def load_suite(path: str | Path) -> Suite:
    """Parse and check a suite file; errors name the key."""
    p = Path(path)
    data = read_yaml_mapping(p, "suite")
    unknown = set(data) - SUITE_KEYS
    if unknown:
        raise ConfigError(f"{p}: unknown suite key(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(SUITE_KEYS))}")
    for key in ("name", "configs", "runs"):
        if key not in data:
            raise ConfigError(f"{p}: the suite needs a {key!r} entry")
    configs = data["configs"]
    if not isinstance(configs, dict) or not configs:
        raise ConfigError(f"{p}: configs must map dataset names to config folders")
    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"{p}: seeds must be a non-empty list of integers, got {seeds!r}")
    if not isinstance(data["runs"], list) or not data["runs"]:
        raise ConfigError(f"{p}: runs must be a non-empty list")
    runs = []
    for i, r in enumerate(data["runs"]):
        if not isinstance(r, dict) or "name" not in r or "config" not in r:
            raise ConfigError(f"{p}: runs[{i}] needs a name and a config")
        bad = set(r) - RUN_KEYS
        if bad:
            raise ConfigError(f"{p}: runs[{i}] ({r['name']}): unknown key(s) {', '.join(sorted(bad))}; valid: {', '.join(sorted(RUN_KEYS))}")
        tasks = r.get("tasks")
        if tasks is not None and (not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks)):
            raise ConfigError(f"{p}: runs[{i}] ({r['name']}): tasks must be a list of task names")
        same_as = r.get("same_as")
        if same_as is not None and (not isinstance(same_as, str) or "/" not in same_as):
            raise ConfigError(f"{p}: runs[{i}] ({r['name']}): same_as must be a run folder relative to the sweep's "
                              f"folder, e.g. ../paper_main/tsn; got {same_as!r}")
        runs.append(RunSpec(str(r["name"]), str(r["config"]), _str_list(r.get("set"), f"runs[{i}].set"), tasks,
                            r.get("label"), same_as))
    names = [r.name for r in runs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{p}: run name(s) used twice: {', '.join(dup)}")
    from tsn.claims import parse_claims

    claims = parse_claims(data.get("claims"), str(p), names)
    return Suite(str(data["name"]), {str(k): str(v) for k, v in configs.items()}, seeds, runs,
                 _str_list(data.get("set"), "set"), data.get("reference"), p, claims)


@dataclass
class Job:
    run: RunSpec
    seed: int
    out: Path
    overrides: list[str]
    config_path: Path
    is_reference: bool
    reference_dir: Path | None
    reference_command: str | None = None  # the command that trains the missing reference run
    same_as_dir: Path | None = None  # RunSpec.same_as of this seed

    def waits_for(self) -> Path | None:
        """A run this job needs finished first (its reference, or the run it
        may reuse) that is training in another process now; else None."""
        for d in (self.reference_dir, self.same_as_dir):
            if d is not None and not (d / "metrics.json").is_file() and RunLock(d).held_elsewhere():
                return d
        return None

    @property
    def label(self) -> str:
        return f"{self.run.name}/seed{self.seed}"

    def state(self) -> str:
        if (self.out / "metrics.json").is_file():
            return "done"
        if (self.out / "checkpoints" / "last.pt").is_file():
            return "resume"
        return "start"


def _config_dir(suite: Suite, dataset: str) -> Path:
    if dataset not in suite.configs:
        raise ConfigError(f"suite {suite.name!r} has no configs for dataset {dataset!r}; it has {', '.join(suite.configs)}")
    d = Path(suite.configs[dataset])
    if not d.is_absolute():
        d = ROOT / d
    if not d.is_dir():
        raise ConfigError(f"config folder not found: {d}")
    return d


def plan(suite: Suite, dataset: str, out: Path, cli_set: list[str] | None = None, only: list[str] | None = None) -> list[Job]:
    """The jobs in execution order: reference runs first, then the rest in
    suite order, seeds inner: a method's seeds come together, so the claims
    about it are decided as early as the suite allows."""
    from tsn.config import load_config
    from tsn.validate import check_config

    cdir = _config_dir(suite, dataset)
    names = [r.name for r in suite.runs]
    for n in only or []:
        if n not in names:
            raise ConfigError(f"--only {n}: no such run in suite {suite.name!r}; runs: {', '.join(names)}")
    ref_name = suite.reference
    local_ref = ref_name in names if ref_name else False
    jobs = []
    ordered = sorted(suite.runs, key=lambda r: 0 if (local_ref and r.name == ref_name) else 1)
    for run in ordered:
        if only and run.name not in only:
            continue
        cfile = cdir / run.config
        if not cfile.is_file():
            raise ConfigError(f"run {run.name}: config file not found: {cfile}")
        for seed in suite.seeds:
            is_ref = local_ref and run.name == ref_name
            ref_dir = None
            if ref_name and not is_ref:
                ref_dir = (out / ref_name / f"seed{seed}").resolve()
            ov = list(suite.set) + list(run.set) + _task_overrides(cfile, run, suite.set) + list(cli_set or [])
            ov += [f"name={run.name}", f"train.seed={seed}"]
            if ref_dir is not None:
                ov.append(f"eval.single_task={ref_dir}")
            check_config(load_config(cfile, ov))  # every config is checked before the first run starts
            hint = _reference_command(suite, dataset, out, ref_name, seed, cli_set, local_ref) if ref_dir else None
            same = (out / run.same_as / f"seed{seed}").resolve() if run.same_as else None
            jobs.append(Job(run, seed, out / run.name / f"seed{seed}", ov, cfile, is_ref, ref_dir, hint, same))
    return jobs


def _reference_command(suite: Suite, dataset: str, out: Path, ref_name: str, seed: int,
                       cli_set: list[str] | None, local: bool) -> str:
    """The sweep command that trains the reference run of ``seed`` where this
    run looks for it: same dataset, same command-line overrides, same folder."""
    import shlex

    if local:
        suite_file, ref_out, only = suite.path, out, ref_name
    else:  # a path relative to OUT, e.g. ../paper_main/single_task
        ref_run = (out / ref_name).resolve()
        ref_out, only = ref_run.parent, ref_run.name
        suite_file = ROOT / "configs" / "sweeps" / f"{ref_out.name}.yaml"
        if not suite_file.is_file():
            return f"the suite whose run {only} lives in {ref_out}, with --dataset {dataset} --out {ref_out}"
    args = ["python", "-m", "train.sweep", str(suite_file), "--dataset", dataset, "--out", str(ref_out),
            "--only", only, "--seeds", str(seed)]
    for s in cli_set or []:
        args += ["--set", s]
    return " ".join(shlex.quote(a) for a in args)


def _task_overrides(cfile: Path, run: RunSpec, suite_set: list[str]) -> list[str]:
    """``tasks:`` sets data.tasks and replaces loss.weights by those tasks' weights
    (``_replace_``: a mapping in ``--set`` merges otherwise), so that the saved
    config lists only what the run trains."""
    if run.tasks is None:
        return []
    from tsn.config import apply_overrides, load_yaml_with_bases

    raw = apply_overrides(load_yaml_with_bases(cfile), list(suite_set) + list(run.set))
    weights = {t: w for t, w in ((raw.get("loss") or {}).get("weights") or {}).items() if t in run.tasks}
    flow = lambda v: yaml.safe_dump(v, default_flow_style=True).strip()  # noqa: E731
    return [f"data.tasks={flow(run.tasks)}", f"loss.weights={flow({'_replace_': True, **weights})}"]


def _flat_configs(saved: Path, cfg) -> tuple[dict, dict]:
    """(saved config.yaml, ``cfg``) resolved and flattened to dotted keys, for comparing them."""
    from tsn.config import load_config, to_dict

    return _flat(to_dict(load_config(saved))), _flat(to_dict(cfg))


def _check_resumable(job: Job, cfg) -> None:
    saved = job.out / "config.yaml"
    if not saved.is_file():
        return
    old, new = _flat_configs(saved, cfg)
    diff = [k for k in new if old.get(k) != new[k]]
    if diff:
        raise ConfigError(f"{job.out} was started with a different config ({', '.join(diff[:5])}); "
                          "pass the same --set, or delete the folder to start over")


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def run_job(job: Job, quiet: bool = True, log=print) -> dict:
    """Start or resume one run (or reuse its ``same_as``); returns its metrics.json content."""
    import json

    from tsn.config import load_config
    from tsn.engine.trainer import Trainer

    if job.state() == "done":
        return json.loads((job.out / "metrics.json").read_text())
    if job.reference_dir is not None and not (job.reference_dir / "metrics.json").is_file():
        raise ConfigError(f"reference run {job.reference_dir} has not finished; run it first: {job.reference_command}")
    cfg = load_config(job.config_path, job.overrides)
    resume = job.state() == "resume"
    if resume:
        _check_resumable(job, cfg)
    elif job.same_as_dir is not None:
        why = _differs(job.same_as_dir, cfg)
        if why is None:
            return reuse_run(job.same_as_dir, job.out)
        log(f"{job.label}: trained here, not reused from {job.same_as_dir}: {why}")
    return Trainer(cfg, job.out, resume=resume, quiet=quiet).fit()


def _differs(src: Path, cfg) -> str | None:
    """Why the finished run ``src`` is not the run ``cfg`` describes; None if it is."""
    if not (src / "metrics.json").is_file():
        return "it has not finished"
    try:
        old, new = _flat_configs(src / "config.yaml", cfg)
    except TSNError as e:
        return f"its config.yaml cannot be read ({e})"
    diff = sorted(k for k in set(old) | set(new) if k != "name" and old.get(k) != new.get(k))
    return f"its config differs in {', '.join(diff[:5])}" if diff else None


def reuse_run(src: Path, dst: Path) -> dict:
    """Make ``dst`` the finished run ``src``: its records copied, its
    checkpoints hard-linked (copied across file systems), metrics.json last
    (with ``same_as``), so that an interruption leaves ``dst`` unfinished."""
    import json
    import os
    import shutil

    from tsn.io import atomic_write_bytes, atomic_write_json

    for rel in ["config.yaml", "log.txt", *(p.relative_to(src) for p in sorted(src.glob("evals/*.json")))]:
        if (src / rel).is_file():
            atomic_write_bytes(dst / rel, (src / rel).read_bytes())
    for ckpt in sorted(src.glob("checkpoints/*.pt")):
        target = dst / "checkpoints" / ckpt.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        try:
            os.link(ckpt, target)
        except OSError:
            shutil.copyfile(ckpt, target)
    metrics = {**json.loads((src / "metrics.json").read_text()), "same_as": str(src)}
    atomic_write_json(dst / "metrics.json", metrics)
    return metrics


POLL_S = 30.0  # how often a run waiting for a reference trained elsewhere looks again


class RunLock:
    """An exclusive claim on one run directory shared by sweep processes.

    ``flock`` rather than a marker file: the kernel drops it when the holder
    exits or is killed, so there is no stale claim to clean up. Where ``fcntl``
    does not exist (Windows) every claim succeeds: one process per suite.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir.parent / f".{run_dir.name}.lock"
        self._file = None

    def acquire(self) -> bool:
        try:
            import fcntl
        except ImportError:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            return False
        self._file = f
        return True

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor drops the flock
            self._file = None

    def held_elsewhere(self) -> bool:
        if not self.path.exists():  # every holder creates it: nobody has claimed this run
            return False
        if self.acquire():
            self.release()
            return False
        return True


def _wait(seconds: float) -> None:
    time.sleep(seconds)


def _next_job(pending: list[Job]) -> tuple[Job | None, RunLock | None, Job | None]:
    """The first pending job this process may take now (finished ones first
    come back without a lock), else (None, None, a job waiting for its reference)."""
    waiting = None
    for job in pending:
        if job.state() == "done":
            return job, None, None
        if job.waits_for() is not None:
            waiting = waiting or job
            continue
        lock = RunLock(job.out)
        if lock.acquire():
            return job, lock, None
    return None, None, waiting


def write_manifest(suite: Suite, dataset: str, out: Path) -> None:
    """``OUT/sweep.json``: which run is which, for the tables and figures. Its seeds are
    every seed this folder's sweeps were asked for (``--seeds 1 2`` after ``--seeds 0``
    continues the suite; it does not make seed 0 foreign to it)."""
    from tsn.io import atomic_write_json

    seeds = set(suite.seeds)
    try:
        earlier = json.loads((out / "sweep.json").read_text())
        if earlier.get("suite") == suite.name and earlier.get("dataset") == dataset:
            seeds |= set(earlier.get("seeds", []))
    except (OSError, ValueError):
        pass
    atomic_write_json(out / "sweep.json", {
        "suite": suite.name, "dataset": dataset, "file": str(suite.path), "seeds": sorted(seeds),
        "reference": suite.reference,
        "runs": [{"name": r.name, "config": r.config, "label": r.label, "tasks": r.tasks, "set": r.set,
                  **({"same_as": r.same_as} if r.same_as else {})} for r in suite.runs],
        "claims": [{"claim": c.text, "runs": list(c.runs), **({"than": list(c.than)} if c.than is not None else {}),
                    **({"within": c.within} if c.within is not None else {}),
                    **({"epoch": c.epoch} if c.epoch is not None else {})} for c in suite.claims],
    })


def sweep(suite: Suite, dataset: str, out: Path, cli_set: list[str] | None = None, only: list[str] | None = None,
          dry_run: bool = False, quiet: bool = True, log=print) -> list[dict]:
    """Run the suite; one summary row per job (name, seed, state before, outcome, seconds, delta_m)."""
    jobs = plan(suite, dataset, out, cli_set, only)
    log(f"suite {suite.name} on {dataset}: {len(jobs)} run(s) in {out}")
    if dry_run:
        for j in jobs:
            log(f"  {j.state():6s} {j.label:28s} {j.config_path.name} {' '.join(j.overrides)}")
        return [{"run": j.run.name, "seed": j.seed, "state": j.state(), "outcome": "dry-run"} for j in jobs]
    write_manifest(suite, dataset, out)
    rows, pending, i, said = [], list(jobs), 0, None
    while pending:
        job, lock, waiting = _next_job(pending)
        if job is None:
            if waiting is not None:  # its reference trains in another process: wait for it
                if said is not waiting:
                    log(f"{waiting.label}: waiting for {waiting.waits_for()} (training in another process)")
                    said = waiting
                _wait(POLL_S)
                continue
            for j in pending:  # every run left is being trained by another process
                log(f"{j.label}: being trained by another process, left to it")
                rows.append({"run": j.run.name, "seed": j.seed, "state": j.state(), "dir": str(j.out),
                             "outcome": "elsewhere"})
            break
        pending.remove(job)
        i += 1
        try:
            rows.append(_run_logged(job, f"[{i}/{len(jobs)}]", quiet, log))
        finally:
            if lock is not None:
                lock.release()
        _release_memory()
    log(summary(rows))
    return rows


def _run_logged(job: Job, tag: str, quiet: bool, log) -> dict:
    """Run one job (after its claim), logging its start and outcome; its summary row."""
    state = job.state()
    verb = {"done": "finished already, skipped", "resume": "resuming", "start": "starting"}[state]
    log(f"{tag} {job.label}: {verb} ({job.out})")
    t0 = time.time()
    row = {"run": job.run.name, "seed": job.seed, "state": state, "dir": str(job.out)}
    try:
        res = run_job(job, quiet, log)
    except KeyboardInterrupt:
        log(f"{tag} {job.label}: interrupted; the same command resumes it")
        raise
    except TSNError as e:
        row.update(outcome="failed", error=str(e), seconds=time.time() - t0)
        log(f"{tag} {job.label}: FAILED: {e}")
    else:
        reused = state != "done" and "same_as" in res
        row.update(outcome="skipped" if state == "done" else "reused" if reused else "ok", seconds=time.time() - t0,
                   delta_m=res.get("delta_m"))
        if reused:
            log(f"{tag} {job.label}: reused {res['same_as']} (the same config, finished)")
        elif state != "done":
            dm = res.get("delta_m")
            log(f"{tag} {job.label}: done in {row['seconds']:.0f}s, best epoch {res.get('best_epoch')}"
                + (f", delta_m {dm:+.2f}%" if dm is not None else ""))
    return row


def _release_memory() -> None:
    """Runs share the process: free the last one's GPU memory before the next."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def summary(rows: list[dict]) -> str:
    lines = [f"{'run':28s} {'outcome':8s} {'time':>7s} {'delta_m':>8s}"]
    for r in rows:
        dm = r.get("delta_m")
        lines.append(f"{r['run'] + '/seed' + str(r['seed']):28s} {r['outcome']:8s} {r.get('seconds', 0):6.0f}s "
                     f"{'' if dm is None else f'{dm:+.2f}%':>8s}" + (f"  {r['error']}" if r.get("error") else ""))
    counts = {k: sum(r["outcome"] == k for r in rows) for k in ("ok", "reused", "skipped", "failed", "elsewhere")}
    lines.append(f"{counts['ok']} trained, " + (f"{counts['reused']} reused, " if counts["reused"] else "")
                 + f"{counts['skipped']} already finished, {counts['failed']} failed"
                 + (f", {counts['elsewhere']} left to other processes" if counts["elsewhere"] else ""))
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m train.sweep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("suite", help="suite YAML (configs/sweeps/*.yaml)")
    p.add_argument("--dataset", default="synthetic", help="which config folder of the suite (default synthetic)")
    p.add_argument("--out", help="sweep folder (default runs/sweeps/<dataset>/<suite name>)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a key in every run")
    p.add_argument("--only", action="append", default=[], metavar="NAME", help="run only this run (repeatable)")
    p.add_argument("--seeds", type=int, nargs="+", help="run these seeds instead of the suite's")
    p.add_argument("--dry-run", action="store_true", help="list the runs and their state; train nothing")
    p.add_argument("--verbose", action="store_true", help="show each run's own log lines")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        suite = load_suite(args.suite)
        if args.seeds:
            suite.seeds = list(args.seeds)
        out = Path(args.out or Path("runs") / "sweeps" / args.dataset / suite.name)
        rows = sweep(suite, args.dataset, out, args.set, args.only, args.dry_run, quiet=not args.verbose,
                     log=lambda m: print(m, flush=True))
    except TSNError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command to resume", file=sys.stderr)
        return 130
    return 1 if any(r["outcome"] == "failed" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
