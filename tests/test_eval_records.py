"""``python -m eval RUN_DIR`` never replaces the training record: each
evaluation goes to its own file under RUN/evals/, named by split, tasks,
protocol and checkpoint; a run directory that cannot be written still gets
its results printed; the epoch printed is the one metrics.json records."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from tsn.config import load_config
from tsn.engine.trainer import Trainer

TASKS = ["semseg", "normals"]
TINY = {
    "data": {"name": "synthetic", "tasks": TASKS, "size": 32, "augment": False,
             "options": {"length": {"train": 8, "val": 4, "test": 4}}},
    "model": {"encoder_width": 8, "skip_widths": [8, 8, 8, 16, 16], "up_widths": [16, 16, 8, 8, 8],
              "code": {"dim": 12}, "embedding": {"n_fc": 2}},
    "optim": {"lr": 1e-3, "schedule": "none"},
    "train": {"epochs": 3, "batch_size": 4, "images_every_val": 0},
    "eval": {"batch_size": 4, "select_metric": "semseg/mIoU"},
}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rec") / "run"
    Trainer(load_config(data=TINY), out, quiet=True).fit()
    return out


def _run(tmp_path: Path, trained: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    return run


def _eval(*argv: str) -> int:
    from eval.__main__ import main

    return main([*argv])


def test_eval_writes_beside_the_training_record_and_never_into_it(tmp_path, trained, capsys):
    from eval.tables import collect

    run = _run(tmp_path, trained)
    before = (run / "metrics.json").read_bytes()
    training = json.loads(before)
    assert _eval(str(run), "--json") == 0
    full = json.loads(capsys.readouterr().out)
    assert _eval(str(run), "--tasks", "semseg", "--json") == 0
    part = json.loads(capsys.readouterr().out)
    assert _eval(str(run), "--set", "data.options.length.val=2", "--json") == 0
    small = json.loads(capsys.readouterr().out)
    assert (run / "metrics.json").read_bytes() == before  # the training record is untouched
    names = sorted(p.name for p in (run / "evals").iterdir())
    assert len(names) == 3 and len({full["record"], part["record"], small["record"]}) == 3
    sha = full["record"].rsplit("-", 1)[1][:8]
    assert Path(full["record"]).name == f"val-all-pad-best-{sha}.json"
    assert Path(part["record"]).name == f"val-semseg-pad-best-{sha}.json"
    assert Path(small["record"]).name.startswith("val-all-pad-set") and "-best-" in small["record"]
    rec = json.loads(Path(full["record"]).read_text())
    assert rec["kind"] == "evaluation" and rec["geometry"] == "pad" and rec["tasks"] == TASKS
    assert rec["results"] == full["results"] and rec["overrides"] == []
    assert json.loads(Path(small["record"]).read_text())["overrides"] == ["data.options.length.val=2"]
    # the full evaluation of best.pt is the training record's final validation
    assert rec["results"]["semseg"]["mIoU"] == pytest.approx(training["val"]["semseg"]["mIoU"], abs=1e-9)
    # tables read the training record, not the partial evaluations
    (r,) = collect(run.parent)
    assert r.results("val") == training["val"]
    assert r.results("test") is None  # not evaluated yet
    assert _eval(str(run), "--split", "test", "--json") == 0
    test = json.loads(capsys.readouterr().out)
    assert collect(run.parent)[0].results("test") == test["results"]
    names.append(Path(test["record"]).name)
    names.sort()
    # evaluating again overwrites only its own record (same checkpoint, same protocol)
    assert _eval(str(run), "--json") == 0
    capsys.readouterr()
    assert sorted(p.name for p in (run / "evals").iterdir()) == names


def test_another_models_checkpoint_in_a_run_dir_does_not_overwrite_its_results(tmp_path, trained, capsys):
    run = _run(tmp_path, trained)
    other = tmp_path / "other"
    cfg = load_config(data=TINY, overrides=["train.epochs=1", "train.seed=3"])
    Trainer(cfg, other, quiet=True).fit()
    assert _eval(str(run), "--json") == 0
    own = json.loads(capsys.readouterr().out)
    own_bytes = Path(own["record"]).read_bytes()
    metrics = (run / "metrics.json").read_bytes()
    # the other model's best.pt, dropped into this run under the same file name
    (run / "foreign").mkdir()
    shutil.copy(other / "checkpoints" / "best.pt", run / "foreign" / "best.pt")
    shutil.copy(other / "checkpoints" / "best.pt", run / "checkpoints" / "other.pt")
    for ck in (run / "foreign" / "best.pt", run / "checkpoints" / "other.pt"):
        assert _eval(str(ck), "--json") == 0
        rec = json.loads(capsys.readouterr().out)["record"]
        assert rec != own["record"]
    assert Path(own["record"]).read_bytes() == own_bytes
    assert (run / "metrics.json").read_bytes() == metrics


def test_unwritable_run_dir_still_prints_results(tmp_path, trained, capsys, monkeypatch):
    run = _run(tmp_path, trained)
    (run / "evals").write_text("a file where the folder would go")  # a real write failure, no root tricks
    assert _eval(str(run)) == 0
    out, err = capsys.readouterr()
    assert "semseg" in out and "mIoU" in out and "evaluation saved" not in out
    assert err.count("\n") == 1 and "could not save the evaluation to" in err and str(run / "evals") in err

    import tsn.io

    def refuse(path, obj):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(tsn.io, "atomic_write_json", refuse)
    (run / "evals").unlink()
    assert _eval(str(run), "--json") == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["record"] is None and json.loads(out)["results"]["semseg"]
    assert "Permission denied" in err and err.count("\n") == 1
    # --record puts the record elsewhere
    monkeypatch.undo()
    assert _eval(str(run), "--record", str(tmp_path / "elsewhere.json")) == 0
    assert json.loads((tmp_path / "elsewhere.json").read_text())["results"]["semseg"]


def test_printed_epoch_is_the_best_epoch_of_metrics_json(tmp_path, trained, capsys):
    run = _run(tmp_path, trained)
    best_epoch = json.loads((run / "metrics.json").read_text())["best_epoch"]
    assert _eval(str(run)) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith(f"(best epoch {best_epoch})"), first
    rec = json.loads(next((run / "evals").iterdir()).read_text())
    assert rec["best_epoch"] == best_epoch
    assert _eval(str(run / "checkpoints" / "last.pt")) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("(epoch 3)")


def test_bad_export_folder_is_refused_before_any_work(tmp_path, trained):
    run = _run(tmp_path, trained)
    (tmp_path / "exp" / "semseg").mkdir(parents=True)
    (tmp_path / "exp" / "semseg" / "x.png").write_bytes(b"old")
    assert _eval(str(run), "--export", str(tmp_path / "exp")) == 2
    assert (tmp_path / "exp" / "semseg" / "x.png").read_bytes() == b"old"
    assert not (run / "evals").exists()
