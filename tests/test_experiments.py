"""Experiment tooling: sweeps (skip, resume), tables (delta_m by hand),
figures, adding a task to a trained TSN, and task codes swapped by config
and at inference time. Tiny models on tiny synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from tsn.config import load_config
from tsn.engine.trainer import Trainer
from tsn.errors import ConfigError

TASKS = ["semseg", "normals"]
TINY = {
    "data": {"name": "synthetic", "tasks": TASKS, "size": 32, "augment": False,
             "options": {"length": {"train": 8, "val": 4, "test": 4}}},
    "model": {"encoder_width": 8, "skip_widths": [8, 8, 8, 16, 16], "up_widths": [16, 16, 8, 8, 8],
              "code": {"dim": 12}, "embedding": {"n_fc": 2}},
    "loss": {"weights": {"semseg": 1, "normals": 10}},
    "optim": {"lr": 1e-3, "schedule": "none"},
    "train": {"epochs": 2, "batch_size": 4, "images_every_val": 0},
    "eval": {"batch_size": 4},
}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread, and the machine is shared."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def write_configs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "base.yaml").write_text(yaml.safe_dump(TINY))
    for m in ("single_task", "tsn", "task_in"):
        (folder / f"{m}.yaml").write_text(f"base: base.yaml\nmodel:\n  name: {m}\n")
    return folder


def write_suite(tmp: Path, **extra) -> Path:
    suite = {"name": "paper_main", "configs": {"synthetic": str(write_configs(tmp / "configs"))}, "seeds": [0],
             "reference": "single_task",
             "runs": [{"name": "tsn", "config": "tsn.yaml", "label": "TSN"},
                      {"name": "task_in", "config": "task_in.yaml"},
                      {"name": "single_task", "config": "single_task.yaml"}], **extra}
    path = tmp / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A finished three-run sweep: (suite file, sweep folder, summary rows)."""
    from train.sweep import load_suite, sweep

    tmp = tmp_path_factory.mktemp("sweep")
    suite = write_suite(tmp)
    out = tmp / "runs" / "paper_main"
    rows = sweep(load_suite(suite), "synthetic", out, log=lambda m: None)
    return suite, out, rows


# ---------------------------------------------------------------- sweep


def test_sweep_runs_the_reference_first_and_every_run_records_delta_m(swept):
    _, out, rows = swept
    assert [r["run"] for r in rows] == ["single_task", "tsn", "task_in"]
    assert all(r["outcome"] == "ok" for r in rows), rows
    for name in ("tsn", "task_in"):
        m = json.loads((out / name / "seed0" / "metrics.json").read_text())
        cfg = yaml.safe_load((out / name / "seed0" / "config.yaml").read_text())
        assert isinstance(m["delta_m"], float) and m["selected_by"] == "delta_m" and m["name"] == name
        assert Path(cfg["eval"]["single_task"]) == (out / "single_task" / "seed0").resolve()
        env = m["environment"]  # where the record was made: its wall time and numbers are comparable
        assert env["torch"] == torch.__version__ and env["threads"] == 1 and env["device"]
        assert env["cpu"].endswith(torch.backends.cpu.get_cpu_capability())  # the generation, beyond its name
        assert env["code"] is None or len(env["code"]) >= 12
    assert json.loads((out / "sweep.json").read_text())["suite"] == "paper_main"


def test_sweep_skips_finished_runs_and_resumes_interrupted_ones(swept):
    from train.sweep import load_suite, sweep

    suite, out, _ = swept
    before = json.loads((out / "task_in" / "seed0" / "metrics.json").read_text())
    stamp = (out / "tsn" / "seed0" / "metrics.json").stat().st_mtime_ns
    (out / "task_in" / "seed0" / "metrics.json").unlink()  # killed after its last checkpoint
    lines = []
    rows = sweep(load_suite(suite), "synthetic", out, log=lines.append)
    assert {r["run"]: (r["state"], r["outcome"]) for r in rows} == {
        "single_task": ("done", "skipped"), "tsn": ("done", "skipped"), "task_in": ("resume", "ok")}
    assert (out / "tsn" / "seed0" / "metrics.json").stat().st_mtime_ns == stamp
    after = json.loads((out / "task_in" / "seed0" / "metrics.json").read_text())
    assert json.dumps(after["val"], sort_keys=True) == json.dumps(before["val"], sort_keys=True)
    assert after["history"] == before["history"] and after["steps"] == before["steps"]
    assert any("task_in/seed0: resuming" in line for line in lines)
    assert "1 trained, 2 already finished, 0 failed" in lines[-1]


def test_sweep_dry_run_only_and_errors(swept, tmp_path):
    from train.sweep import load_suite, main, sweep

    suite, out, _ = swept
    rows = sweep(load_suite(suite), "synthetic", tmp_path / "fresh", only=["tsn"], dry_run=True, log=lambda m: None)
    assert [(r["run"], r["state"]) for r in rows] == [("tsn", "start")]
    assert not (tmp_path / "fresh").exists()
    with pytest.raises(ConfigError, match="no such run"):
        sweep(load_suite(suite), "synthetic", out, only=["nope"], dry_run=True)
    with pytest.raises(ConfigError, match="no configs for dataset 'pascal'"):
        sweep(load_suite(suite), "pascal", out, dry_run=True)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "configs": {"synthetic": "."}, "runs": [{"name": "a", "config": "b"}], "sed": 1}))
    with pytest.raises(ConfigError, match="unknown suite key"):
        load_suite(bad)
    assert main([str(bad)]) == 2


def _fake_runs(monkeypatch, calls: list, delay: float = 0.0):
    """run_job replaced by one that checks the reference is finished, records
    the job and writes its metrics.json: the sweep's scheduling without training."""
    import time

    import train.sweep as sw
    from tsn.io import atomic_write_json

    def fake(job, quiet=True, log=None):
        if job.state() == "done":
            return json.loads((job.out / "metrics.json").read_text())
        ref_ok = job.reference_dir is None or (job.reference_dir / "metrics.json").is_file()
        calls.append((job.label, ref_ok))
        time.sleep(delay)
        atomic_write_json(job.out / "metrics.json", {"delta_m": 0.0})  # atomic, as the trainer writes it
        return {"delta_m": 0.0}

    monkeypatch.setattr(sw, "run_job", fake)


def test_a_run_claimed_by_another_process_is_left_to_it(tmp_path, monkeypatch):
    from train.sweep import RunLock, load_suite, sweep

    suite, out, calls = load_suite(write_suite(tmp_path)), tmp_path / "runs", []
    _fake_runs(monkeypatch, calls)
    other = RunLock(out / "task_in" / "seed0")  # another process holds this claim (a separate open file)
    assert other.acquire() and other.path == out / "task_in" / ".seed0.lock"
    lines = []
    rows = sweep(suite, "synthetic", out, log=lines.append)
    assert calls == [("single_task/seed0", True), ("tsn/seed0", True)]
    assert [(r["run"], r["outcome"]) for r in rows] == [("single_task", "ok"), ("tsn", "ok"), ("task_in", "elsewhere")]
    assert "2 trained, 0 already finished, 0 failed, 1 left to other processes" in lines[-1]
    other.release()
    assert not RunLock(out / "task_in" / "seed0").held_elsewhere()  # released claims are free again


def test_a_run_waits_for_its_reference_training_elsewhere(tmp_path, monkeypatch):
    import train.sweep as sw

    suite, out, calls, waits = sw.load_suite(write_suite(tmp_path)), tmp_path / "runs", [], []
    _fake_runs(monkeypatch, calls)
    other = sw.RunLock(out / "single_task" / "seed0")
    assert other.acquire()

    def other_finishes(seconds):  # the other process finishes the reference while this one waits
        waits.append(seconds)
        (out / "single_task" / "seed0").mkdir(parents=True)
        (out / "single_task" / "seed0" / "metrics.json").write_text("{}")
        other.release()

    monkeypatch.setattr(sw, "_wait", other_finishes)
    rows = sw.sweep(suite, "synthetic", out, log=lambda m: None)
    assert waits == [sw.POLL_S]
    assert calls == [("tsn/seed0", True), ("task_in/seed0", True)]
    assert {r["run"]: r["outcome"] for r in rows} == {"single_task": "skipped", "tsn": "ok", "task_in": "ok"}


def test_processes_sharing_a_suite_train_every_run_once_after_its_reference(tmp_path, monkeypatch):
    """Three sweeps of the same suite at once (threads: flock claims conflict
    between open files, in one process too): every run trained exactly once,
    never before its reference."""
    import threading

    import train.sweep as sw

    suite_path, out, calls = write_suite(tmp_path, seeds=[0, 1, 2]), tmp_path / "runs", []
    _fake_runs(monkeypatch, calls, delay=0.02)
    monkeypatch.setattr(sw, "_wait", lambda s: __import__("time").sleep(0.01))
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        sw.sweep(sw.load_suite(suite_path), "synthetic", out, log=lambda m: None))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    want = sorted(f"{r}/seed{s}" for r in ("single_task", "tsn", "task_in") for s in range(3))
    assert sorted(label for label, _ in calls) == want
    assert all(ref_ok for _, ref_ok in calls)
    assert sum(r["outcome"] == "ok" for rows in results for r in rows) == 9


def test_same_as_reuses_a_finished_run_of_the_same_config_and_trains_a_different_one(tmp_path):
    """The embedding ablation's orthogonal d = 100 is paper_main's TSN: reused
    (records copied, checkpoints linked), never when the configs differ."""
    import os

    import train.sweep as sw
    from eval.tables import collect

    runs = tmp_path / "runs"
    sw.sweep(sw.load_suite(write_suite(tmp_path)), "synthetic", runs / "paper_main", only=["single_task", "tsn"],
             log=lambda m: None)
    abl = {"name": "ablation", "configs": {"synthetic": str(tmp_path / "configs")}, "seeds": [0],
           "reference": "../paper_main/single_task",
           "runs": [{"name": "d12", "config": "tsn.yaml", "same_as": "../paper_main/tsn"},
                    {"name": "d8", "config": "tsn.yaml", "set": ["model.options.tsn.code.dim=8"],
                     "same_as": "../paper_main/tsn"}]}
    (tmp_path / "abl.yaml").write_text(yaml.safe_dump(abl))
    lines = []
    rows = sw.sweep(sw.load_suite(tmp_path / "abl.yaml"), "synthetic", runs / "ablation", log=lines.append)
    assert [(r["run"], r["outcome"]) for r in rows] == [("d12", "reused"), ("d8", "ok")]
    src, dst = runs / "paper_main" / "tsn" / "seed0", runs / "ablation" / "d12" / "seed0"
    got, want = json.loads((dst / "metrics.json").read_text()), json.loads((src / "metrics.json").read_text())
    assert got.pop("same_as") == str(src.resolve()) and got == want
    assert os.stat(dst / "checkpoints" / "best.pt").st_ino == os.stat(src / "checkpoints" / "best.pt").st_ino
    assert any("differs in model.options.tsn.code.dim" in m for m in lines)
    assert "1 trained, 1 reused, 0 already finished, 0 failed" in lines[-1]
    groups = {r.group: r.code for r in collect(runs)}
    assert groups["ablation/d12"] == ("orthogonal", 12) and groups["ablation/d8"] == ("orthogonal", 8)
    again = sw.sweep(sw.load_suite(tmp_path / "abl.yaml"), "synthetic", runs / "ablation", log=lambda m: None)
    assert [r["outcome"] for r in again] == ["skipped", "skipped"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**abl, "runs": [{"name": "x", "config": "tsn.yaml", "same_as": "tsn"}]}))
    with pytest.raises(ConfigError, match="same_as must be a run folder relative to the sweep's folder"):
        sw.load_suite(bad)


def test_a_run_waits_for_its_same_as_training_elsewhere(tmp_path, monkeypatch):
    import train.sweep as sw

    out = tmp_path / "runs" / "b"
    other = sw.RunLock(tmp_path / "runs" / "a" / "tsn" / "seed0")
    assert other.acquire()
    job = sw.Job(sw.RunSpec("x", "tsn.yaml", same_as="../a/tsn"), 0, out / "x" / "seed0", [], tmp_path, False, None,
                 same_as_dir=(out / "../a/tsn/seed0").resolve())
    assert job.waits_for() == other.path.parent.resolve() / "seed0"
    assert sw._next_job([job])[0] is None  # nothing to take now: it waits
    other.release()
    assert job.waits_for() is None and sw._next_job([job])[0] is job


def test_missing_reference_hint_is_the_command_that_trains_it(tmp_path):
    """Following the hint must train the reference with the same dataset and
    overrides, into the folder where the waiting run looks for it."""
    import shlex

    from train.sweep import load_suite, parse_args, plan, run_job

    suite = load_suite(write_suite(tmp_path))
    out = tmp_path / "runs" / "paper_main"
    cli = ["data.options.length.train=4", "train.epochs=1"]
    job = next(j for j in plan(suite, "synthetic", out, cli, only=["tsn"]))
    with pytest.raises(ConfigError, match="has not finished; run it first") as e:
        run_job(job)
    cmd = shlex.split(str(e.value).split("run it first: ", 1)[1])
    assert cmd[:3] == ["python", "-m", "train.sweep"]
    args = parse_args(cmd[3:])
    assert (args.dataset, args.only, args.seeds, args.set) == ("synthetic", ["single_task"], [0], cli)
    assert Path(args.suite) == suite.path and Path(args.out) == out
    ref = plan(load_suite(args.suite), args.dataset, Path(args.out), args.set, args.only)[0]
    assert ref.out.resolve() == job.reference_dir


def test_shipped_suites_resolve(capsys):
    from train.sweep import main

    root = Path(__file__).resolve().parents[1] / "configs" / "sweeps"
    for name, n in [("paper_main", 15), ("embedding_ablation", 24), ("scaling", 20), ("comparison", 18),
                    ("comparison_weighting", 6), ("collapse_main", 24)]:
        assert main([str(root / f"{name}.yaml"), "--dry-run", "--out", "/nonexistent/x/" + name]) == 0
        assert f"{n} run(s)" in capsys.readouterr().out
    assert main([str(root / "scaling.yaml"), "--dry-run", "--dataset", "pascal"]) == 2
    # every shipped suite's every config passes the checks on every dataset it names
    for suite in sorted(root.glob("*.yaml")):
        for dataset in yaml.safe_load(suite.read_text())["configs"]:
            assert main([str(suite), "--dry-run", "--dataset", dataset, "--out", f"/nonexistent/{dataset}"]) == 0, (suite, dataset)
    capsys.readouterr()


# ---------------------------------------------------------------- tables


def fake_run(folder: Path, model: str, val: dict, params: int = 1_000_000, code=("orthogonal", 12), history=None,
             legacy_code: bool = False, extra: dict | None = None) -> None:
    """A finished run's records; the config has the codes where resolved configs keep them
    (model.options.tsn.code), or, with ``legacy_code``, where old runs kept them (model.code)."""
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({
        "name": folder.parent.name, "model": model, "dataset": "synthetic", "tasks": list(val), "params": params,
        "val": val, "delta_m": None, "history": history or [], **(extra or {})}))
    c = {"kind": code[0], "dim": code[1]}
    m = {"name": model, "code": c} if legacy_code else {"name": model, "options": {"tsn": {"code": c}}}
    (folder / "config.yaml").write_text(yaml.safe_dump({"model": m}))


def test_tables_compute_delta_m_per_seed_against_single_task(tmp_path):
    from eval.tables import collect, render

    main = tmp_path / "paper_main"
    fake_run(main / "single_task" / "seed0", "single_task", {"semseg": {"mIoU": 50.0}, "normals": {"mean": 20.0}}, 4_000_000)
    fake_run(main / "single_task" / "seed1", "single_task", {"semseg": {"mIoU": 60.0}, "normals": {"mean": 30.0}}, 4_000_000)
    # seed 0: semseg 10% worse, normals 10% worse -> +10; seed 1: both 10% better -> -10
    env = {"code": "abc123", "python": "3.11.7", "torch": "2.14.1", "device": "AMD EPYC", "threads": 1}
    fake_run(main / "tsn" / "seed0", "tsn", {"semseg": {"mIoU": 45.0}, "normals": {"mean": 22.0}}, 1_500_000,
             extra={"train_time_s": 401.4, "environment": env})
    fake_run(main / "tsn" / "seed1", "tsn", {"semseg": {"mIoU": 66.0}, "normals": {"mean": 27.0}}, 1_500_000,
             extra={"train_time_s": 1030.0})  # recorded before metrics.json had an environment
    (main / "sweep.json").write_text(json.dumps({"suite": "paper_main", "runs": [{"name": "tsn", "label": "TSN"}]}))
    abl = tmp_path / "embedding_ablation"
    fake_run(abl / "gaussian_d50" / "seed0", "tsn", {"semseg": {"mIoU": 55.0}, "normals": {"mean": 20.0}}, code=("gaussian", 50))
    fake_run(abl / "orthogonal_d150" / "seed0", "tsn", {"semseg": {"mIoU": 50.0}, "normals": {"mean": 20.0}},
             code=("orthogonal", 150), legacy_code=True)
    (abl / "sweep.json").write_text(json.dumps({"suite": "embedding_ablation", "runs": []}))

    md, tex, numbers = render(collect(tmp_path))
    rows = {r["label"]: r for r in numbers["main"]}
    assert list(rows) == ["single-task", "TSN"]  # the paper's order
    assert rows["TSN"]["delta_m"]["mean"] == pytest.approx(0.0, abs=1e-9)
    assert rows["TSN"]["delta_m"]["std"] == pytest.approx(np.std([10.0, -10.0], ddof=1))
    assert rows["TSN"]["semseg"]["mean"] == pytest.approx(55.5)
    abl_rows = {r["label"]: r for r in numbers["ablation"]}
    assert list(abl_rows) == ["orthogonal, d=150", "gaussian, d=50"]  # codes read from either config layout
    assert abl_rows["gaussian, d=50"]["delta_m"]["mean"] == pytest.approx(-5.0)  # semseg 10% better, normals equal
    lines = md.splitlines()
    tsn_row = next(line for line in lines if line.startswith("| TSN |"))
    assert "55.50 ± 14.85" in tsn_row and "0.00 ± 14.14" in tsn_row and "| 1.5 |" in tsn_row and "| 0.30 | 18.3 |" in tsn_row
    assert any(line.startswith("| gaussian, d=50 |") and "-5.00" in line and "| 0.30 |" in line for line in lines)
    assert "the paper's numbers on PASCAL-Context" in md and "| task-specific INs | 70.7 |" in md
    # the trivial predictor's row heads every table; one of another split is refused in one line
    trivial = {"dataset": "synthetic", "split": "val",
               "results": {"semseg": {"mIoU": 3.74}, "normals": {"mean": 50.15}}}
    md_t, _, numbers_t = render(collect(tmp_path), trivial=trivial)
    assert md_t.count("| trivial predictor | 3.74 | 50.15 |") == 2 and numbers_t["trivial"] == trivial["results"]
    with pytest.raises(ConfigError, match="scores synthetic/test; the tables are synthetic/val"):
        render(collect(tmp_path), trivial={**trivial, "split": "test"})
    # provenance: per-seed wall time, and the code / machine / torch each run recorded
    assert ("| main | TSN | paper_main | 0 / 1 | 401 / 1030 | abc123, not recorded (1) | AMD EPYC (1), "
            "not recorded (1) | 2.14.1, not recorded (1) |") in md
    assert "\\toprule" in tex and "$\\pm$" in tex and "$\\Delta_m$" in tex
    # --without: Δm over the other tasks (semseg alone: gaussian d50 10% better -> -10), columns and history gone
    from eval.tables import without_tasks

    md_w, _, numbers_w = render(without_tasks(collect(tmp_path), ["normals"]), without=["normals"])
    assert {r["label"]: r for r in numbers_w["ablation"]}["gaussian, d=50"]["delta_m"]["mean"] == pytest.approx(-10.0)
    assert "normals" not in md_w.split("## Provenance")[0].split("\n", 3)[3] and "every task but normals" in md_w
    with pytest.raises(ConfigError, match="--without depth: no run has that task; the runs' tasks: normals, semseg"):
        without_tasks(collect(tmp_path), ["depth"])
    with pytest.raises(ConfigError, match="leaves no task"):
        without_tasks(collect(tmp_path), ["semseg", "normals"])


def test_tables_cli_writes_markdown_latex_and_json(swept, tmp_path, capsys):
    from eval.__main__ import main

    _, out, _ = swept
    assert main(["tables", str(out.parent), "--out", str(tmp_path)]) == 0
    md = (tmp_path / "tables.md").read_text()
    assert "| single-task |" in md and "| TSN |" in md and "| task-specific INs |" in md
    assert (tmp_path / "tables.tex").read_text().count("\\begin{tabular}") == 3  # ours, provenance, the paper's
    numbers = json.loads((tmp_path / "tables.json").read_text())
    tsn = next(r for r in numbers["main"] if r["label"] == "TSN")
    stored = json.loads((out / "tsn" / "seed0" / "metrics.json").read_text())["delta_m"]
    assert tsn["delta_m"]["mean"] == pytest.approx(stored)  # same formula, same reference as the trainer
    assert main(["tables", str(tmp_path / "nothing")]) == 2
    wrong = tmp_path / "trivial_test_split.json"  # the trivial predictor of another split: named in one line
    wrong.write_text(json.dumps({"dataset": "synthetic", "split": "test", "results": {}}))
    capsys.readouterr()
    assert main(["tables", str(out.parent), "--out", str(tmp_path), "--trivial", str(wrong)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--trivial {wrong} scores synthetic/test" in err


# ---------------------------------------------------------------- figures


def test_records_keep_what_the_tables_read_and_never_replace(swept, tmp_path, capsys):
    from eval.__main__ import main
    from eval.records import record_files

    _, out, _ = swept
    keep = tmp_path / "kept"
    assert main(["records", str(out), "--out", str(keep)]) == 0
    names = {p.name for p in record_files(keep)}
    assert {"metrics.json", "config.yaml", "log.txt", "sweep.json"} <= names
    assert not list(keep.rglob("*.pt"))  # no checkpoints
    for d in (out, keep):
        assert main(["tables", str(d), "--out", str(tmp_path / d.name)]) == 0
    assert (tmp_path / out.name / "tables.json").read_text() == (tmp_path / keep.name / "tables.json").read_text()
    assert main(["records", str(out), "--out", str(keep)]) == 0  # again: nothing new, nothing replaced
    assert "0 record file(s) copied" in capsys.readouterr().out
    kept = keep / "tsn" / "seed0" / "log.txt"
    kept.write_text("another run's log\n")
    assert main(["records", str(out), "--out", str(keep)]) == 2
    assert "exists and differs" in capsys.readouterr().err and kept.read_text() == "another run's log\n"


def test_records_replace_a_changed_manifest_and_name_it(swept, tmp_path, capsys):
    from eval.__main__ import main

    _, out, _ = swept
    keep = tmp_path / "kept"
    assert main(["records", str(out), "--out", str(keep)]) == 0
    old = keep / "sweep.json"
    old.write_text('{"suite": "smaller, older"}')
    capsys.readouterr()
    assert main(["records", str(out), "--out", str(keep)]) == 0
    printed = capsys.readouterr().out
    assert f"{old}: the suite changed; its manifest replaced" in printed and "1 manifest(s) replaced" in printed
    assert old.read_text() == (out / "sweep.json").read_text()


def test_manifest_keeps_the_seeds_of_earlier_invocations(tmp_path):
    """`--seeds 1 2` after `--seeds 0` continues a suite: its manifest lists 0, 1, 2 (it
    listed only the last invocation's seeds); another suite in the folder starts afresh."""
    from train.sweep import load_suite, write_manifest

    suite, out = load_suite(write_suite(tmp_path)), tmp_path / "out"
    out.mkdir()
    for seeds in ([0], [2, 1], [1]):
        suite.seeds = seeds
        write_manifest(suite, "synthetic", out)
    assert json.loads((out / "sweep.json").read_text())["seeds"] == [0, 1, 2]
    write_manifest(suite, "pascal", out)  # another dataset's suite: its own seeds only
    assert json.loads((out / "sweep.json").read_text())["seeds"] == [1]
    (out / "sweep.json").write_text("{not json")  # a damaged manifest is replaced, not a crash
    write_manifest(suite, "synthetic", out)
    assert json.loads((out / "sweep.json").read_text())["seeds"] == [1]


def test_figures_are_written(swept, tmp_path):
    from eval.__main__ import main
    from eval.figures import history_delta_m
    from eval.tables import collect

    _, out, _ = swept
    assert main(["figures", str(out.parent), "--out", str(tmp_path)]) == 0
    for name in ("convergence.png", "latent_similarity.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
    sim = json.loads((tmp_path / "latent_similarity.json").read_text())
    assert sim["tasks"] == TASKS and sim["cosine_similarity"][0][0] == pytest.approx(1.0)
    runs = collect(out.parent)
    tsn = next(r for r in runs if r.model == "tsn")
    curve = history_delta_m(tsn, [r for r in runs if r.model == "single_task"])
    assert [e for e, _ in curve] == [1, 2] and curve[-1][1] == pytest.approx(tsn.metrics["history"][-1]["delta_m"])


def test_latent_figure_defaults_to_paper_mains_tsn(tmp_path):
    from eval.figures import default_tsn_run
    from eval.tables import collect

    for suite, name in (("comparison", "tsn_all"), ("paper_main", "tsn")):  # "comparison" sorts first
        fake_run(tmp_path / suite / name / "seed0", "tsn", {"semseg": {"mIoU": 30.0}}, 1_000)
        (tmp_path / suite / "sweep.json").write_text(json.dumps({"suite": suite, "runs": []}))
    assert default_tsn_run(collect(tmp_path)).group == "paper_main/tsn"


def test_convergence_has_one_curve_per_row_not_per_model(tmp_path):
    """A variant of the same model from another suite (collapse_main's task INs)
    is its own row, never pooled into the paper's task INs."""
    from eval.figures import convergence_curves
    from eval.tables import collect

    ref = {"semseg": {"mIoU": 50.0}}
    hist = lambda v: [{"epoch": 1, "val": {"semseg": {"mIoU": v}}}]  # noqa: E731
    for suite, rows in (("paper_main", ["single_task", "task_in"]), ("collapse_main", ["task_in_fixed"])):
        for name in rows:
            for seed in (0, 1):
                v = 50.0 if name == "single_task" else 25.0 if name == "task_in" else 45.0
                fake_run(tmp_path / suite / name / f"seed{seed}", "single_task" if name == "single_task" else "task_in",
                         {"semseg": {"mIoU": v}}, history=hist(v))
        (tmp_path / suite / "sweep.json").write_text(json.dumps({"suite": suite, "runs": [
            {"name": n, "label": "fixed INs" if n == "task_in_fixed" else None} for n in rows]}))
    curves = convergence_curves(collect(tmp_path))
    assert [(label, model, len(c)) for label, model, c in curves] == [("task-specific INs", "task_in", 2)]
    assert curves[0][2][0] == {1: pytest.approx(50.0)}  # 50% worse than single-task's mIoU 50
    (tmp_path / "paper_main" / "sweep.json").write_text(json.dumps({"suite": "other", "runs": []}))
    got = {label: [c[1] for c in cs] for label, _, cs in convergence_curves(collect(tmp_path))}
    assert got == {"task-specific INs": [pytest.approx(50.0)] * 2, "fixed INs": [pytest.approx(10.0)] * 2}


# ---------------------------------------------------------------- adding a task


def test_add_task_trains_only_the_new_code_and_keeps_old_outputs(swept, tmp_path):
    from eval.__main__ import main as eval_main
    from eval.run import load_run
    from train.add_task import add_task, summary

    _, out, _ = swept
    base = out / "tsn" / "seed0"
    scratch = tmp_path / "scratch" / "metrics.json"  # stands for a run that trained sal from scratch
    scratch.parent.mkdir()
    scratch.write_text(json.dumps({"model": "single_task", "val": {"sal": {"mIoU": 30.0}}}))
    res = add_task(base, "sal", tmp_path / "new", epochs=1, lr=0.05, reference=scratch.parent, log=lambda m: None)
    assert res["old_tasks_identical"] and res["shared_weights_identical"] and res["old_metrics_unchanged"]
    assert res["tasks"] == [*TASKS, "sal"] and res["added_task"]["trained_params"] == 12
    assert res["added_task"]["reference"]["metrics"]["mIoU"] == 30.0
    assert res["delta_m"] is None  # the base run's single-task reference has no sal
    assert "30.00 trained from scratch" in summary(res)

    _, old, _ = load_run(base, device="cpu")
    _, new, _ = load_run(tmp_path / "new", device="cpu")  # the saved config rebuilds the grown model
    s_old, s_new = old.state_dict(), new.state_dict()
    assert set(s_new) - set(s_old) == {"codes.code_sal"}
    assert all(torch.equal(s_old[k], s_new[k]) for k in s_old)
    old.add_task("sal", 1, learnable=True, seed=0)  # the code add_task started from
    assert not torch.equal(old.codes.code("sal").detach(), new.codes.code("sal"))
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        a, b = old(x, tasks=TASKS), new(x, tasks=TASKS)
    assert all(torch.equal(a[t], b[t]) for t in TASKS)
    assert eval_main([str(tmp_path / "new"), "--json"]) == 0

    with pytest.raises(ConfigError, match="only a TSN"):
        add_task(out / "single_task" / "seed0", "sal", tmp_path / "x", epochs=1, log=lambda m: None)
    with pytest.raises(ConfigError, match="already has 'semseg'"):
        add_task(base, "semseg", tmp_path / "y", epochs=1, log=lambda m: None)


# ---------------------------------------------------------------- task codes


def test_codes_from_a_file_train_end_to_end_and_swap_at_inference(tmp_path):
    codes = np.random.default_rng(0).normal(size=(2, 12)).astype(np.float32)
    np.save(tmp_path / "codes.npy", codes)
    cfg = load_config(data=TINY, overrides=["model.name=tsn", "model.code.kind=file", f"model.code.path={tmp_path / 'codes.npy'}",
                                            "train.epochs=1"])
    trainer = Trainer(cfg, tmp_path / "run", quiet=True)
    res = trainer.fit()
    assert set(res["val"]) == set(TASKS)
    model = trainer.model.eval()
    assert torch.equal(model.codes.table(), torch.from_numpy(codes))
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        own = model(x, task="semseg")
        given = model(x, task="semseg", code=torch.from_numpy(codes[0]))
        swapped = model(x, task="semseg", code=torch.from_numpy(codes[1]))
        normals = model(x, task="normals")
    assert torch.allclose(own, given, atol=1e-5)
    # the normals code through the semseg head: the mean head pools the same shared output
    assert not torch.allclose(own, swapped) and swapped.shape == own.shape and normals.shape[1] == 3
    with pytest.raises(ConfigError, match="expected \\(2, 10\\)"):
        Trainer(load_config(data=TINY, overrides=["model.name=tsn", "model.code.kind=file",
                                                  f"model.code.path={tmp_path / 'codes.npy'}", "model.code.dim=10"]), None)
