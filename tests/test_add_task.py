"""train.add_task is the trainer with the old network frozen: what it prints is what metrics.json records."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from tests.test_pipeline import tiny
from tsn.config import load_config
from tsn.engine.trainer import Trainer


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    out = tmp_path_factory.mktemp("base")
    cfg = load_config(data=tiny(data={"tasks": ["semseg", "normals"], "augment": False},
                                train={"epochs": 1, "sampling": "all"}))
    Trainer(cfg, out, quiet=True).fit()
    return out


def test_add_task_reports_what_it_checked(base, tmp_path):
    from train.add_task import METRIC_ATOL, STACKED_ATOL, add_task, summary

    res = add_task(base, "edge", tmp_path / "new", epochs=2, lr=0.05, device="cpu", log=lambda m: None)
    written = json.loads((tmp_path / "new" / "metrics.json").read_text())
    for key in ("old_tasks_identical", "shared_weights_identical", "stacked_within_tolerance", "old_metrics_unchanged",
                "best_epoch", "steps"):
        assert written[key] == res[key], key
    assert res["old_tasks_identical"] and res["shared_weights_identical"] and res["stacked_within_tolerance"]
    assert res["stacked_max_abs_diff"] <= STACKED_ATOL and res["stacked_tolerance"]["atol"] == STACKED_ATOL
    # old_metrics_unchanged means: every old metric within METRIC_ATOL of the base run's metrics.json
    base_val = json.loads((base / "metrics.json").read_text())["val"]
    within = all(abs(v - base_val[t][k]) <= METRIC_ATOL or (v != v and base_val[t][k] != base_val[t][k])
                 for t in ("semseg", "normals") for k, v in res["val"][t].items())
    assert res["old_metrics_unchanged"] is within is True
    text = summary(res)
    assert f"bit-identical: {res['old_tasks_identical']}" in text
    assert f"within {METRIC_ATOL:g} of the base run's metrics.json: {res['old_metrics_unchanged']}" in text
    assert f"within atol {STACKED_ATOL:g}" in text
    # the ordinary trainer ran: 8 samples / batch 4 = 2 steps per epoch, one task, its own checkpoints
    assert res["steps"] == 4 and res["added_task"]["trained_params"] == 12
    cfg = yaml.safe_load((tmp_path / "new" / "config.yaml").read_text())
    assert cfg["optim"]["lr"] == 0.05 and cfg["optim"]["schedule"] == "none" and cfg["data"]["tasks"][-1] == "edge"
    best = torch.load(tmp_path / "new" / "checkpoints" / "best.pt", weights_only=False)
    assert best["epoch"] == res["best_epoch"]
    old = torch.load(base / "checkpoints" / "best.pt", weights_only=False)["model"]
    for k, v in old.items():
        assert torch.equal(best["model"][k], v), k


def test_add_task_cli_errors_are_one_line(base, tmp_path):
    from tests.test_pipeline import run_cli

    r = run_cli("-m", "train.add_task", str(base), "--task", "semseg", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr


def test_add_task_resumes_an_interrupted_run_where_it_stopped(base, tmp_path):
    """A run stopped after its first epoch's checkpoint (metrics.json not yet written)
    continues with --resume to the same result as one uninterrupted run."""
    from tsn.errors import ConfigError
    from train.add_task import add_task

    quiet = {"lr": 0.05, "device": "cpu", "log": lambda m: None}
    straight = add_task(base, "edge", tmp_path / "straight", epochs=2, **quiet)
    stopped = tmp_path / "stopped"
    add_task(base, "edge", stopped, epochs=1, **quiet)
    (stopped / "metrics.json").unlink()  # as if stopped before the run finished
    with pytest.raises(ConfigError, match="interrupted run; --resume"):
        add_task(base, "edge", stopped, epochs=2, **quiet)
    resumed = add_task(base, "edge", stopped, epochs=2, resume=True, **quiet)
    assert [h["epoch"] for h in resumed["history"]] == [h["epoch"] for h in straight["history"]] == [1, 2]
    assert resumed["steps"] == straight["steps"] == 4
    for t in ("edge", "semseg", "normals"):
        assert resumed["val"][t] == pytest.approx(straight["val"][t], nan_ok=True), t
    assert resumed["old_tasks_identical"] and resumed["shared_weights_identical"]
    with pytest.raises(ConfigError, match="already holds a finished run"):
        add_task(base, "edge", stopped, epochs=2, resume=True, **quiet)


def test_add_task_keeps_old_outputs_bit_identical_under_channels_last(tmp_path):
    """The main job's recipe trains channels_last: the old outputs recorded before the
    task is added must be computed in the memory format the trainer then uses."""
    from train.add_task import add_task

    cfg = load_config(data=tiny(data={"tasks": ["semseg", "normals"], "augment": False},
                                train={"epochs": 1, "sampling": "all", "channels_last": True}))
    Trainer(cfg, tmp_path / "base", quiet=True).fit()
    res = add_task(tmp_path / "base", "edge", tmp_path / "new", epochs=1, lr=0.05, device="cpu", log=lambda m: None)
    assert res["old_tasks_identical"] and res["shared_weights_identical"] and res["stacked_within_tolerance"]


def test_add_task_takes_the_base_runs_seed_unless_told(tmp_path):
    """A base trained with seed k is compared with the runs of seed k, so its added task
    defaults to seed k too (the code's initial values and the data order); --seed overrides."""
    from train.add_task import add_task

    cfg = load_config(data=tiny(data={"tasks": ["semseg", "normals"], "augment": False},
                                train={"epochs": 1, "sampling": "all", "seed": 3}))
    Trainer(cfg, tmp_path / "base", quiet=True).fit()
    quiet = {"epochs": 1, "lr": 0.05, "device": "cpu", "log": lambda m: None}
    default = add_task(tmp_path / "base", "edge", tmp_path / "default", **quiet)
    told = add_task(tmp_path / "base", "edge", tmp_path / "told", seed=5, **quiet)
    assert default["added_task"]["seed"] == 3 and told["added_task"]["seed"] == 5
    for run, seed in (("default", 3), ("told", 5)):
        assert yaml.safe_load((tmp_path / run / "config.yaml").read_text())["train"]["seed"] == seed
    codes = [torch.load(tmp_path / run / "checkpoints" / "best.pt", weights_only=False)["model"]
             for run in ("default", "told")]
    assert any(not torch.equal(codes[0][k], codes[1][k]) for k in codes[0] if "code" in k)
