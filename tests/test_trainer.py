"""The trainer's seams: hooks, checkpointed state declared once, the epoch best.pt records."""

from __future__ import annotations

import json

import pytest
import torch

from tests.test_pipeline import tiny
from tsn.config import load_config
from tsn.engine.hooks import HookBase
from tsn.engine.trainer import Trainer


class Recorder(HookBase):
    def __init__(self):
        self.calls = []
        self.counter = {"n": 0}

    def register(self, trainer):
        trainer.register_checkpointable("recorder", self)

    def state_dict(self):
        return dict(self.counter)

    def load_state_dict(self, state):
        self.counter = dict(state)

    def before_train(self):
        self.calls.append("before_train")

    def before_step(self, batch, tasks):
        self.calls.append(("before_step", tuple(tasks), self.trainer.step))

    def after_step(self, losses, weights):
        self.counter["n"] += 1
        self.calls.append(("after_step", self.trainer.step))

    def after_validation(self, entry):
        self.calls.append(("after_validation", entry["epoch"], entry["score_name"]))

    def after_epoch(self):
        self.calls.append(("after_epoch", self.trainer.epoch))

    def after_train(self, result):
        self.calls.append("after_train")
        result["recorded"] = self.counter["n"]


def test_hooks_run_at_their_stages_and_their_state_is_checkpointed(tmp_path):
    cfg = load_config(data=tiny(train={"epochs": 2, "sampling": "all"}))
    rec = Recorder()
    res = Trainer(cfg, tmp_path, quiet=True, hooks=[rec]).fit()
    # 8 samples / batch 4 = 2 steps per epoch, all tasks per step
    assert rec.calls == [
        "before_train",
        ("before_step", ("edge", "semseg", "normals"), 0), ("after_step", 1),
        ("before_step", ("edge", "semseg", "normals"), 1), ("after_step", 2),
        ("after_validation", 1, "weighted_val_loss"), ("after_epoch", 1),
        ("before_step", ("edge", "semseg", "normals"), 2), ("after_step", 3),
        ("before_step", ("edge", "semseg", "normals"), 3), ("after_step", 4),
        ("after_validation", 2, "weighted_val_loss"), ("after_epoch", 2),
        "after_train",
    ]
    assert res["recorded"] == 4  # a key added in after_train reaches metrics.json
    assert json.loads((tmp_path / "metrics.json").read_text())["recorded"] == 4
    ckpt = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=False)
    # the registered object is saved under its name, beside the keys every older checkpoint has
    assert ckpt["recorder"] == {"n": 4}
    for key in ("model", "fingerprint", "config", "tasks", "epoch", "segment", "batch", "step", "optimizer",
                "schedule", "weighting", "rng", "best", "history", "epoch_losses", "elapsed"):
        assert key in ckpt, key
    # ... and loaded back on resume
    again = Recorder()
    tr = Trainer(cfg, tmp_path, resume=True, quiet=True, hooks=[again])
    assert again.counter == {"n": 4} and tr.step == 4 and tr.best == ckpt["best"]


def test_a_checkpoint_key_is_declared_once(tmp_path):
    tr = Trainer(load_config(data=tiny()), None, quiet=True)
    with pytest.raises(ValueError, match="already taken"):
        tr.register_checkpointable("optimizer", tr.optimizer)


def test_best_pt_eval_and_metrics_json_name_the_same_epoch(tmp_path, capsys):
    """best.pt used to record the epoch before the one validated (eval printed 'epoch 4' for best_epoch 5)."""
    from eval.__main__ import main as eval_main

    res = Trainer(load_config(data=tiny(train={"epochs": 3, "sampling": "all"})), tmp_path, quiet=True).fit()
    best = torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=False)
    assert res["best_epoch"] in (1, 2, 3)
    assert best["epoch"] == res["best_epoch"] == best["best"]["epoch"]
    assert json.loads((tmp_path / "checkpoints" / "best.json").read_text())["epoch"] == res["best_epoch"]
    assert json.loads((tmp_path / "metrics.json").read_text())["best_epoch"] == res["best_epoch"]
    assert torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=False)["epoch"] == 3
    capsys.readouterr()
    assert eval_main([str(tmp_path)]) == 0
    assert f"best.pt (best epoch {res['best_epoch']})" in capsys.readouterr().out


def test_the_record_keeps_the_code_that_started_training(tmp_path, monkeypatch):
    """A commit made while a run trains must not be recorded as the code that trained it."""
    import tsn.engine.trainer as trainer_mod

    checkout = {"code": "abc"}

    class Commit(HookBase):  # someone commits after the first step
        def after_step(self, losses, weights):
            checkout["code"] = "def"

    monkeypatch.setattr(trainer_mod, "run_environment", lambda device: {**checkout, "device": device})
    cfg = load_config(data=tiny(train={"epochs": 1, "sampling": "all"}))
    res = Trainer(cfg, tmp_path, quiet=True, hooks=[Commit()]).fit()
    assert checkout["code"] == "def" and res["environment"]["code"] == "abc"
    assert "code abc" in (tmp_path / "log.txt").read_text()
