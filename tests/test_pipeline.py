"""End-to-end training and evaluation on tiny synthetic data, configs, faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tsn.config import Config, load_config, to_dict, to_yaml
from tsn.engine.trainer import Trainer, TrainingError
from tsn.errors import CheckpointError, ConfigError
from tsn.validate import check_config

ROOT = Path(__file__).resolve().parents[1]


def tiny(**sections) -> dict:
    cfg = {
        "data": {"name": "synthetic", "tasks": ["edge", "semseg", "normals"], "size": 32,
                 "options": {"length": {"train": 8, "val": 4, "test": 4}}},
        "model": {"encoder_width": 8, "skip_widths": [8, 8, 8, 16, 16], "up_widths": [16, 16, 8, 8, 8],
                  "code": {"dim": 12}, "embedding": {"n_fc": 2}},
        "optim": {"lr": 1e-3, "schedule": "none"},
        "train": {"epochs": 1, "batch_size": 4, "images_every_val": 0},
        "eval": {"batch_size": 4, "edge_thresholds": 5, "val_edge_thresholds": 3},
    }
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value}
    return cfg


def train(tmp_path: Path, overrides: list[str] | None = None, **sections) -> dict:
    cfg = load_config(data=tiny(**sections), overrides=overrides)
    return Trainer(cfg, tmp_path, quiet=True).fit()


def same_results(a: dict, b: dict) -> bool:
    """Equal, counting NaN (an IoU of a class absent from the split) as equal to NaN."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def run_cli(*args: str, cwd: Path = ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "TSN_QUIET": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------- end to end


@pytest.mark.parametrize("model", ["tsn", "task_in", "task_bn", "multi_decoder", "single_task", "rcm"])
def test_every_method_trains_and_evaluates(tmp_path, model):
    res = train(tmp_path, model={"name": model})
    assert set(res["val"]) == {"edge", "semseg", "normals"}
    assert 0 <= res["val"]["semseg"]["mIoU"] <= 100 and res["val"]["normals"]["mean"] > 0
    assert res["steps"] == 3 * 2  # paper sampling: one pass per task, 8 samples / batch 4
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert same_results(written["val"], res["val"]) and written["params"] == res["params"]
    for f in ["config.yaml", "log.txt", "checkpoints/last.pt", "checkpoints/best.pt"]:
        assert (tmp_path / f).is_file(), f
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


@pytest.mark.parametrize("sampling,steps", [("paper", 6), ("all", 2), ("random", 2)])
def test_every_sampling_strategy(tmp_path, sampling, steps):
    res = train(tmp_path, train={"sampling": sampling})
    assert res["steps"] == steps


@pytest.mark.parametrize("weighting,opts", [("uncertainty", {}), ("uncertainty", {"form": "liebel"}),
                                             ("dwa", {}), ("gradnorm", {})])
def test_weighting_methods_train(tmp_path, weighting, opts):
    res = train(tmp_path, train={"sampling": "all", "epochs": 3}, loss={"weighting": weighting, "weighting_options": opts})
    assert res["steps"] == 6
    ckpt = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=False)
    assert ckpt["weighting"] is not None


def test_paper_sampling_runs_tasks_in_a_shuffled_order_each_epoch(tmp_path):
    cfg = load_config(data=tiny(data={"tasks": ["edge", "semseg", "normals", "depth", "sal"]}))
    tr = Trainer(cfg, None, quiet=True)
    orders = [tuple(t[0] for t in tr.segment_tasks(e)) for e in range(6)]
    assert all(sorted(o) == sorted(cfg.data.tasks) for o in orders)
    assert len(set(orders)) > 1


def test_partial_labels_train_with_finite_losses(tmp_path):
    res = train(tmp_path, data={"label_drop": 0.5}, train={"sampling": "all"})
    assert all(v == v for v in res["val_loss"].values())


def test_lr_groups_follow_the_config(tmp_path):
    cfg = load_config(data=tiny(optim={"lr": 1e-3, "encoder_lr": 1e-5}, loss={"weighting": "uncertainty"}))
    tr = Trainer(cfg, None, quiet=True)
    lrs = {g["name"]: (g["lr"], g["weight_decay"]) for g in tr.optimizer.param_groups}
    assert lrs["encoder"][0] == 1e-5 and lrs["decoder"][0] == 1e-3 and lrs["weighting"][1] == 0.0


def test_eval_cli_writes_metrics_and_predictions(tmp_path):
    train(tmp_path / "run")
    r = run_cli("-m", "eval", str(tmp_path / "run"), "--split", "test", "--json",
                "--save-predictions", str(tmp_path / "pred"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out["results"]) == {"edge", "semseg", "normals"}
    assert len(list((tmp_path / "pred").glob("*.png"))) == 4
    data = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "test" not in data and "val" in data  # the training record is not rewritten by eval
    rec = json.loads(Path(out["record"]).read_text())
    assert Path(out["record"]).parent == tmp_path / "run" / "evals" and rec["results"] == out["results"]


def test_delta_m_against_single_task_references(tmp_path):
    single = train(tmp_path / "single", model={"name": "single_task"})
    res = train(tmp_path / "tsn", eval={"single_task": str(tmp_path / "single")})
    assert res["selected_by"] == "delta_m" and isinstance(res["delta_m"], float)
    same = train(tmp_path / "again", model={"name": "single_task"}, eval={"single_task": str(tmp_path / "single")})
    assert same["delta_m"] == pytest.approx(0.0, abs=1e-9)  # same seed, same model: identical results
    assert same_results(single["val"], same["val"])


# ---------------------------------------------------------------- configs


def test_config_errors_name_the_key_and_valid_choices():
    with pytest.raises(ConfigError, match="unknown config key train.epoch; valid keys here: epochs"):
        load_config(data=tiny(train={"epoch": 3}))
    with pytest.raises(ConfigError, match="train.epochs: expected int, got 'ten'"):
        load_config(data=tiny(train={"epochs": "ten"}))

    def checked(data):  # names are the registries' to check (tsn.validate), not the parser's
        return check_config(load_config(data=data))

    with pytest.raises(ConfigError, match="unknown model 'tsm'; valid: .*tsn"):
        checked(tiny(model={"name": "tsm"}))
    with pytest.raises(ConfigError, match="unknown dataset 'cityscapes'; valid: bsds, nyud, .*pascal, synthetic"):
        checked(tiny(data={"name": "cityscapes"}))
    with pytest.raises(ConfigError, match="unknown task 'segm'; valid: edge, semseg"):
        checked(tiny(data={"tasks": ["segm"]}))
    with pytest.raises(ConfigError, match="dataset 'nyud' has no parts"):
        checked(tiny(data={"name": "nyud", "tasks": ["parts"]}))
    with pytest.raises(ConfigError, match="train.sampling: 'sometimes' is not valid; valid: paper, all, random"):
        checked(tiny(train={"sampling": "sometimes"}))
    with pytest.raises(ConfigError, match="unknown weighting 'magic'"):
        checked(tiny(loss={"weighting": "magic"}))
    with pytest.raises(ConfigError, match="unknown task 'semseq'"):
        checked(tiny(loss={"weights": {"semseq": 2.0}}))
    checked(tiny(loss={"weights": {"depth": 2.0}}))  # a known task not trained here: ignored
    with pytest.raises(ConfigError, match="--set expects key=value"):
        load_config(data=tiny(), overrides=["train.epochs"])


def test_base_files_overrides_and_saved_config_reproduce(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(tiny()))
    (tmp_path / "child.yaml").write_text("base: base.yaml\nmodel: {name: task_in}\ntrain: {epochs: 2}\n")
    cfg = load_config(tmp_path / "child.yaml", ["optim.lr=0.5", "data.tasks=[semseg, depth]"])
    assert cfg.model.name == "task_in" and cfg.train.epochs == 2 and cfg.train.batch_size == 4
    assert cfg.optim.lr == 0.5 and cfg.data.tasks == ["semseg", "depth"] and cfg.name == "child"
    (tmp_path / "saved.yaml").write_text(to_yaml(cfg))
    assert to_dict(load_config(tmp_path / "saved.yaml")) == to_dict(cfg)


def test_shipped_configs_parse():
    for path in sorted((ROOT / "configs").glob("*/*.yaml")):
        if path.parent.name == "sweeps":
            continue
        cfg = load_config(path)
        assert isinstance(cfg, Config), path


def test_paper_parameter_counts_from_the_shipped_configs():
    from eval.params import report_for_config

    want = {"tsn": 18.26, "task_in": 17.73, "task_bn": 17.73, "multi_decoder": 43.9, "single_task": 88.6}
    for name, millions in want.items():
        rep = report_for_config(load_config(ROOT / "configs" / "pascal" / f"{name}.yaml"))
        assert abs(rep["params"] / 1e6 - millions) <= 0.05, (name, rep["params"])
    tsn = report_for_config(load_config(ROOT / "configs" / "pascal" / "tsn.yaml"))
    assert tsn["by_part"]["norm"] == 452480 and tsn["by_part"]["embedding"] == 80800


# ---------------------------------------------------------------- faults


def test_non_finite_loss_stops_with_task_and_step(tmp_path):
    cfg = load_config(data=tiny(train={"sampling": "all"}))
    tr = Trainer(cfg, tmp_path, quiet=True)
    real = tr.criterion

    def poisoned(preds, targets):
        out = real(preds, targets)
        out["normals"] = out["normals"] * float("nan")
        return out

    tr.criterion = poisoned
    with pytest.raises(TrainingError, match="non-finite normals loss .* at step 1 .*epoch 1"):
        tr.fit()


def test_cli_errors_are_one_line(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(tiny(data={"name": "pascal", "root": str(tmp_path / "nowhere"), "tasks": ["semseg"]})))
    r = run_cli("-m", "train", str(cfg), "--out", str(tmp_path / "run"))
    assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    r = run_cli("-m", "eval", str(tmp_path / "junk.pt"))
    assert r.returncode == 2 and "cannot read checkpoint" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    r = run_cli("-m", "train", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and "config file not found" in r.stderr


def test_checkpoint_from_a_different_model_is_refused(tmp_path):
    from eval.run import load_run
    from tsn.engine.checkpoint import load_checkpoint, load_model_state
    from tsn.models import build_model

    train(tmp_path)
    other = build_model(load_config(data=tiny(model={"name": "multi_decoder"})).model, {"edge": 1, "semseg": 10, "normals": 3})
    with pytest.raises(CheckpointError, match="different model"):
        load_model_state(other, load_checkpoint(tmp_path))
    cfg, model, _ = load_run(tmp_path)
    assert cfg.model.name == "tsn"


def test_existing_run_is_not_overwritten(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(tiny()))
    assert run_cli("-m", "train", str(cfg), "--out", str(tmp_path / "run")).returncode == 0
    before = (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes()
    r = run_cli("-m", "train", str(cfg), "--out", str(tmp_path / "run"))
    assert r.returncode == 2 and "already holds a run" in r.stderr
    assert (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes() == before


# ---------------------------------------------------------------- resume and DDP


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=False)["model"]


@pytest.mark.slow
def test_killed_mid_epoch_and_resumed_equals_uninterrupted(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(tiny(data={"options": {"length": {"train": 64, "val": 4, "test": 4}}},
                                       train={"epochs": 2, "checkpoint_every": 1})))
    total = 2 * 3 * 16
    assert run_cli("-m", "train", str(cfg), "--out", str(tmp_path / "a")).returncode == 0

    env = {**os.environ, "TSN_QUIET": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "train", str(cfg), "--out", str(tmp_path / "b")], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    note = tmp_path / "b" / "checkpoints" / "last.json"
    deadline = time.time() + 240
    step = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            step = json.loads(note.read_text())["step"]
        except (FileNotFoundError, json.JSONDecodeError):
            step = 0
        if step >= total // 2 + 20:  # well inside the second epoch
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed mid-epoch"
    killed_at = json.loads(note.read_text())
    assert killed_at["epoch"] == 1 and 0 < killed_at["step"] < total
    r = run_cli("-m", "train", "--resume", "--out", str(tmp_path / "b"))
    assert r.returncode == 0, r.stderr
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["steps"] == total


@pytest.mark.slow
def test_ddp_two_processes_equal_one_process(tmp_path):
    sections = dict(data={"tasks": ["edge", "semseg"], "augment": False,
                          "options": {"length": {"train": 16, "val": 6, "test": 4}}},
                    model={"encoder_norm": "frozen_bn"}, optim={"name": "sgd", "lr": 0.05, "momentum": 0.9},
                    train={"epochs": 2, "batch_size": 8, "sampling": "all"})
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(tiny(**sections)))
    r = run_cli("-m", "train", str(cfg), "--out", str(tmp_path / "one"))
    assert r.returncode == 0, r.stderr
    r = run_cli("-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531", "-m", "train",
                str(cfg), "--out", str(tmp_path / "two"), "--set", "train.batch_size=4")
    assert r.returncode == 0, r.stderr
    one, two = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("one", "two"))
    assert two["processes"] == 2 and one["steps"] == two["steps"] == 4
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=1e-4), k
    for task in one["val"]:
        for m, v in one["val"][task].items():
            assert two["val"][task][m] == pytest.approx(v, abs=1e-3), (task, m)


def test_best_checkpoint_follows_the_selection_rule(tmp_path):
    res = train(tmp_path / "loss", train={"epochs": 3, "sampling": "all"}, loss={"weights": {"edge": 5.0}})
    assert res["selected_by"] == "weighted_val_loss"
    hist = [h for h in res["history"] if h["epoch"] > 0]
    for h in hist:  # the recorded score is the training-weighted validation loss
        want = 5.0 * h["val_loss"]["edge"] + h["val_loss"]["semseg"] + h["val_loss"]["normals"]
        assert h["weighted_val_loss"] == pytest.approx(want)
    assert res["best_epoch"] == min(hist, key=lambda h: h["weighted_val_loss"])["epoch"]
    res = train(tmp_path / "metric", train={"epochs": 3, "sampling": "all"}, eval={"select_metric": "semseg/mIoU"})
    hist = [h for h in res["history"] if h["epoch"] > 0]
    assert res["selected_by"] == "semseg/mIoU"
    assert res["best_epoch"] == max(hist, key=lambda h: h["semseg/mIoU"])["epoch"]
