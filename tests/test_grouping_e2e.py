"""Task grouping end to end: the TAG hook in the trainer, the subset suite, ``python -m eval grouping``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from eval.__main__ import main as eval_main
from test_pipeline import tiny
from train.subsets import main as subsets_main
from tsn.config import load_config
from tsn.engine.trainer import Trainer
from tsn.errors import ConfigError

TASKS = ["edge", "semseg", "normals"]


def _train(out: Path, **sections) -> dict:
    return Trainer(load_config(data=tiny(**sections)), out, quiet=True).fit()


def _weights(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=False)["model"]


@pytest.fixture(scope="module")
def tag_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tag")
    _train(out, train={"sampling": "all", "tag_every": 1})
    return out


# ---------------------------------------------------------------- TAG hook


def test_tag_hook_leaves_training_bit_identical_and_records_affinities(tmp_path, tag_run):
    _train(tmp_path, train={"sampling": "all"})
    plain, tagged = _weights(tmp_path), _weights(tag_run)
    assert plain.keys() == tagged.keys()
    assert all(torch.equal(plain[k], tagged[k]) for k in plain)  # parameters and BN running statistics
    m = json.loads((tag_run / "metrics.json").read_text())
    A = m["tag_affinity"]
    assert list(A) == TASKS and all(list(A[i]) == TASKS for i in TASKS)
    assert all(isinstance(A[i][j], float) and A[i][j] == A[i][j] for i in TASKS for j in TASKS)
    assert m["tag_measurements"] == m["steps"] == 2
    assert "tag_affinity" not in json.loads((tmp_path / "metrics.json").read_text())
    ckpt = torch.load(tag_run / "checkpoints" / "last.pt", weights_only=False)
    assert len(ckpt["tag"]["pairs"]) == 9


def test_tag_hook_under_single_task_sampling(tmp_path):
    """Paper sampling trains one task per step; the measurement still covers all tasks."""
    _train(tmp_path / "a", model={"name": "multi_decoder"}, train={"tag_every": 2})
    _train(tmp_path / "b", model={"name": "multi_decoder"})
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert m["tag_measurements"] == 3  # steps 0, 2, 4 of 6


def test_tag_needs_shared_parameters():
    with pytest.raises(ConfigError, match="shared parameters"):
        Trainer(load_config(data=tiny(model={"name": "single_task"}, train={"tag_every": 1})), None, quiet=True)


# ---------------------------------------------------------------- subset suite


def test_subsets_trains_skips_and_resumes(tmp_path, capsys):
    cfg = tiny(model={"name": "multi_decoder"}, data={"tasks": ["edge", "semseg"]}, train={"sampling": "all"},
               loss={"weights": {"edge": 50, "semseg": 1}})
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "suite"
    args = [str(path), "--out", str(out), "--half-width-singles"]
    assert subsets_main(args) == 0
    data = json.loads((out / "subsets.json").read_text())
    nets = {n["name"]: n for n in data["networks"]}
    assert list(nets) == ["edge.half", "semseg.half", "edge+semseg"]
    assert nets["edge.half"]["cost"] == 0.5 and nets["edge+semseg"]["cost"] == 1.0
    assert set(nets["edge+semseg"]["val_loss"]) == {"edge", "semseg"} and "mIoU" == data["metrics"]["semseg"]["name"]
    saved = yaml.safe_load((out / "edge.half" / "config.yaml").read_text())
    assert saved["model"]["encoder_width"] == 4 and saved["loss"]["weights"] == {"edge": 50.0}
    assert nets["edge.half"]["params"] < nets["edge+semseg"]["params"]
    capsys.readouterr()

    stamp = (out / "edge.half" / "metrics.json").stat().st_mtime_ns
    (out / "edge+semseg" / "metrics.json").unlink()  # as if killed after its last checkpoint
    assert subsets_main(args) == 0
    printed = capsys.readouterr().out
    assert printed.count("finished already, skipped") == 2 and "edge+semseg: resumed" in printed
    assert (out / "edge.half" / "metrics.json").stat().st_mtime_ns == stamp
    assert len(json.loads((out / "subsets.json").read_text())["networks"]) == 3

    assert subsets_main([*args, "--set", "train.epochs=2"]) == 2  # a different config in the same suite
    assert "different config" in capsys.readouterr().err


# ---------------------------------------------------------------- eval grouping

LOSSES = {  # a=edge, b=semseg, c=normals: the hand-made case of tests/test_grouping.py plus the full network
    ("edge",): {"edge": 1.0}, ("semseg",): {"semseg": 2.0}, ("normals",): {"normals": 3.0},
    ("edge", "semseg"): {"edge": 0.8, "semseg": 1.9}, ("edge", "normals"): {"edge": 1.2, "normals": 2.5},
    ("semseg", "normals"): {"semseg": 2.2, "normals": 2.7},
    ("edge", "semseg", "normals"): {"edge": 1.1, "semseg": 2.1, "normals": 2.9},
}
TAG = {"edge": {"edge": 0.3, "semseg": -0.1, "normals": 0.4},
       "semseg": {"edge": -0.2, "semseg": 0.2, "normals": -0.1},
       "normals": {"edge": 0.5, "semseg": 0.05, "normals": 0.3}}


def _fabricate(tmp_path: Path) -> tuple[Path, Path]:
    nets = [{"name": "+".join(g), "tasks": list(g), "cost": 1.0, "half_width": False, "val_loss": v,
             "val_metric": {t: 50.0 for t in g}} for g, v in LOSSES.items()]
    metrics = {"edge": {"name": "odsF", "higher_is_better": True}, "semseg": {"name": "mIoU", "higher_is_better": True},
               "normals": {"name": "mean", "higher_is_better": False}}
    (tmp_path / "subsets.json").write_text(json.dumps({"tasks": TASKS, "metrics": metrics, "networks": nets}))
    (tmp_path / "tag").mkdir()
    (tmp_path / "tag" / "metrics.json").write_text(json.dumps({"tasks": TASKS, "tag_affinity": TAG}))
    return tmp_path / "subsets.json", tmp_path / "tag"


def test_eval_grouping_hand_made_case(tmp_path, capsys, tag_run):
    subsets, tag = _fabricate(tmp_path)
    out = tmp_path / "report"
    rc = eval_main(["grouping", "--subsets", str(subsets), "--tag", str(tag), "--tsn", str(tag_run),
                    "--budgets", "1", "2", "--score", "loss", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    rep = json.loads((out / "grouping.json").read_text())
    b1, b2 = rep["budgets"]["1"], rep["budgets"]["2"]
    assert b1["measured"]["groups"] == ["edge+semseg+normals"] and b1["measured"]["measured"] == pytest.approx(6.1)
    assert set(b2["measured"]["groups"]) == {"edge+semseg", "edge+normals"} and b2["measured"]["measured"] == pytest.approx(5.2)
    assert set(b2["pairs"]["groups"]) == {"edge+semseg", "edge+normals"} and b2["pairs"]["predicted"] == pytest.approx(5.2)
    # TAG: edge and normals help each other; semseg is best off with normals (0.05 > -0.1)
    assert set(b2["tag"]["groups"]) == {"semseg+normals", "edge+normals"}
    assert b2["tag"]["measured"] == pytest.approx(1.2 + 2.2 + 2.5)
    assert b1["tag"]["groups"] == ["edge+semseg+normals"] and b1["tsn"]["groups"] == ["edge+semseg+normals"]
    assert rep["baselines"]["all_separate"]["measured"] == pytest.approx(6.0)
    assert rep["baselines"]["all_together"]["measured"] == pytest.approx(6.1)
    assert rep["affinities"]["pairs"]["edge"]["semseg"] == pytest.approx(1 - 1.9 / 2.0)
    assert rep["affinities"]["tsn"]["edge"]["edge"] == pytest.approx(1.0, abs=1e-5)
    assert set(rep["agreement_with_pairs"]) == {"tag", "tsn"}
    assert "edge+normals | edge+semseg" in printed and "TSN latents" in printed
    assert (out / "affinities.png").stat().st_size > 1000

    # the higher-order approximation from pairs alone (no measured full network) predicts it
    (tmp_path / "pairs").mkdir()
    data = json.loads(subsets.read_text())
    data["networks"] = [n for n in data["networks"] if len(n["tasks"]) < 3]
    (tmp_path / "pairs" / "subsets.json").write_text(json.dumps(data))
    assert eval_main(["grouping", "--subsets", str(tmp_path / "pairs"), "--budgets", "1", "--score", "loss",
                      "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["budgets"]["1"]
    assert "infeasible" in row["measured"]
    assert row["pairs"]["groups"] == ["edge+semseg+normals"] and row["pairs"]["predicted"] == pytest.approx(1.0 + 2.05 + 2.6)
    assert row["pairs"]["measured"] is None and row["pairs"]["not_trained"] == ["edge+semseg+normals"]


def test_eval_grouping_errors(tmp_path, capsys):
    assert eval_main(["grouping", "--budgets", "1"]) == 2
    assert "at least one of --subsets" in capsys.readouterr().err
    subsets, _ = _fabricate(tmp_path)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "metrics.json").write_text(json.dumps({"tasks": TASKS}))
    assert eval_main(["grouping", "--subsets", str(subsets), "--tag", str(tmp_path / "plain")]) == 2
    assert "train.tag_every" in capsys.readouterr().err


def test_subsets_plan_from_the_shipped_suite(capsys):
    root = Path(__file__).resolve().parents[1]
    args = [str(root / "configs/synthetic/multi_decoder.yaml"), "--set-from", str(root / "configs/sweeps/grouping.yaml"),
            "--set", "train.sampling=all", "--with-all", "--groups", "edge+semseg+parts", "--out", "/nonexistent", "--dry-run"]
    assert subsets_main(args) == 0
    names = capsys.readouterr().out.split()
    assert len(names) == 6 + 15 + 1 + 1 and names[0] == "edge" and names[-1] == "edge+semseg+parts+normals+sal+depth"
    assert subsets_main([*args[:-3], "--groups", "edge+road", "--out", "/nonexistent", "--dry-run"]) == 2
    assert "road" in capsys.readouterr().err
