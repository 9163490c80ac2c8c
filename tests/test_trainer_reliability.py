"""Nothing lost, every mistake one line: resume overrides, failed writes, leftover temporaries, non-finite stops."""

from __future__ import annotations

import errno

import pytest
import torch
import yaml

from tests.test_pipeline import run_cli, tiny
from tsn.config import load_config, to_dict
from tsn.engine.checkpoint import load_checkpoint
from tsn.engine.trainer import RunWriteError, Trainer, TrainingError, resume_changes
from tsn.errors import ConfigError


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """A finished 1-epoch run (schedule none) to resume from."""
    out = tmp_path_factory.mktemp("done")
    Trainer(load_config(data=tiny()), out, quiet=True).fit()
    return out


# ---------------------------------------------------------------- resume overrides


def test_resume_policy_by_hand():
    saved = to_dict(load_config(data=tiny()))
    ok = load_config(data=tiny(data={"num_workers": 1}, train={"log_every": 3}, eval={"batch_size": 2}))
    lines = resume_changes(saved, ok, completed_epochs=1)
    assert lines == ["resume: data.num_workers changed from 0 to 1 (applied)",
                     "resume: train.log_every changed from 10 to 3 (applied)",
                     "resume: eval.batch_size changed from 4 to 2 (applied)"]
    assert resume_changes(saved, load_config(data=tiny()), 1) == []
    with pytest.raises(ConfigError, match=r"cannot change loss.weights.edge \(None -> 2.0\), optim.lr \(0.001 -> 0.01\) "
                                          r"on resume: the saved run was trained with the old value; allowed on resume: name, data.root"):
        resume_changes(saved, load_config(data=tiny(optim={"lr": 0.01}, loss={"weights": {"edge": 2.0}})), 1)
    longer = load_config(data=tiny(train={"epochs": 3}))
    assert resume_changes(saved, longer, 1) == ["resume: train.epochs changed from 1 to 3 (applied)"]
    for schedule in ("cosine", "poly"):
        s = to_dict(load_config(data=tiny(optim={"schedule": schedule})))
        with pytest.raises(ConfigError, match=f"train.epochs cannot change on resume \\(1 -> 3\\) under optim.schedule={schedule}"):
            resume_changes(s, load_config(data=tiny(optim={"schedule": schedule}, train={"epochs": 3})), 1)
    with pytest.raises(ConfigError, match="train.epochs=1 on resume, but 2 epochs are already trained"):
        resume_changes(to_dict(longer), load_config(data=tiny()), 2)


def test_refused_override_is_one_line_and_config_yaml_keeps_what_was_used(done):
    before = (done / "config.yaml").read_text()
    r = run_cli("-m", "train", "--resume", "--out", str(done), "--set", "optim.lr=0.5")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("error: cannot change optim.lr (0.001 -> 0.5) on resume")
    assert (done / "config.yaml").read_text() == before


def test_allowed_override_is_applied_logged_and_recorded(done, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(done, run)
    cfg = load_config(run / "config.yaml", ["train.epochs=2", "eval.batch_size=2"])
    res = Trainer(cfg, run, resume=True, quiet=True).fit()
    assert res["steps"] == 2 * 6 and [h["epoch"] for h in res["history"]] == [1, 2]
    log = (run / "log.txt").read_text()
    assert "resume: train.epochs changed from 1 to 2 (applied)" in log
    assert "resume: eval.batch_size changed from 4 to 2 (applied)" in log
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["train"]["epochs"] == 2 and saved["eval"]["batch_size"] == 2
    assert load_checkpoint(run / "checkpoints" / "last.pt")["config"]["train"]["epochs"] == 2


# ---------------------------------------------------------------- failed writes


def test_full_disk_during_a_save_is_one_line_and_last_pt_stays_loadable(tmp_path, monkeypatch):
    import tsn.io

    cfg = load_config(data=tiny(train={"epochs": 2, "sampling": "all"}))
    Trainer(cfg, tmp_path, quiet=True).fit()
    good = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    real = tsn.io.torch.save

    def full(obj, f):
        f.write(b"partial")  # some bytes reach the temporary file, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tsn.io.torch, "save", full)
    tr = Trainer(load_config(data=tiny(train={"epochs": 3, "sampling": "all"})), tmp_path, resume=True, quiet=True)
    with pytest.raises(RunWriteError, match=rf"cannot write {tmp_path / 'checkpoints'}/(best|last).pt: No space left on device; "
                                           "the files already there are unchanged"):
        tr.fit()
    monkeypatch.setattr(tsn.io.torch, "save", real)
    after = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert after["step"] == good["step"] and all(torch.equal(after["model"][k], v) for k, v in good["model"].items())
    assert not list((tmp_path / "checkpoints").glob(".*.tmp"))


def test_read_only_run_directory_is_one_line(tmp_path, monkeypatch):
    """A folder that refuses writes (injected: the tests run as root, where chmod does not stop writes)."""
    import tsn.io

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tsn.io.tempfile, "mkstemp", denied)
    with pytest.raises(RunWriteError, match=rf"cannot write {tmp_path / 'config.yaml'}: Permission denied"):
        Trainer(load_config(data=tiny()), tmp_path, quiet=True).fit()


def test_unwritable_run_directory_from_the_command_line(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(tiny()))
    (tmp_path / "file").write_text("")  # a run directory that cannot be created: a file is in the way
    r = run_cli("-m", "train", str(cfg), "--out", str(tmp_path / "file" / "run"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "cannot write to the run directory" in r.stderr, r.stderr


# ---------------------------------------------------------------- leftovers and stops


def test_leftover_temporaries_of_a_killed_write_are_removed_on_start(done, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(done, run)
    junk = [run / "checkpoints" / ".last.pt.k3j2.tmp", run / "checkpoints" / ".best.pt.x9.tmp"]
    for j in junk:
        j.write_bytes(b"half a checkpoint")
    keep = run / "checkpoints" / "notes.tmp"  # not one of ours
    keep.write_text("")
    Trainer(load_config(run / "config.yaml"), run, resume=True, quiet=True)
    assert not any(j.exists() for j in junk) and keep.exists()


def test_non_finite_loss_stop_is_written_to_log_txt(tmp_path):
    tr = Trainer(load_config(data=tiny(train={"sampling": "all"})), tmp_path, quiet=True)
    real = tr.criterion

    def poisoned(preds, targets):
        out = real(preds, targets)
        out["semseg"] = out["semseg"] * float("inf")
        return out

    tr.criterion = poisoned
    with pytest.raises(TrainingError) as e:
        tr.fit()
    assert str(e.value) in (tmp_path / "log.txt").read_text()
