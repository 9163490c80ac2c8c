"""Every task declares everything once; what follows from its label kind; per-task config options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tsn.config import load_config, to_yaml
from tsn.data import build_dataset, invalid_label
from tsn.data import transforms as T
from tsn.engine.trainer import metric_options
from tsn.errors import ConfigError
from tsn.losses import MultiTaskLoss, build_loss
from tsn.metrics import Metric, MultiTaskMetrics, build_metric, higher_is_better
from tsn.tasks import (ALL_TASKS, KINDS, TASKS, BinaryMap, ClassMap, ScalarMap, Task, VectorField, get_task,
                       task_names, temporary_task)


def test_builtin_tasks_in_the_papers_column_order():
    assert task_names()[:6] == list(ALL_TASKS) == ["edge", "semseg", "parts", "normals", "sal", "depth"]
    kinds = {t: get_task(t).kind for t in ALL_TASKS}
    assert kinds == {"edge": "binary_map", "semseg": "class_map", "parts": "class_map", "normals": "vector_field",
                     "sal": "binary_map", "depth": "scalar_map"}
    with pytest.raises(ConfigError, match="unknown task 'flow'; valid: edge, semseg"):
        get_task("flow")


@pytest.mark.parametrize("name", task_names())
def test_every_task_declares_everything(name):
    t = get_task(name)
    assert t.name == name and t.channels >= 1 and t.kind in KINDS and t.description
    assert isinstance(t.higher_is_better, bool) and t.direction(t.headline) == t.higher_is_better
    for m in t.shown_metrics():
        assert isinstance(higher_is_better(name, m), bool), m
    loss = build_loss(t)
    metric = build_metric(name)
    assert callable(loss) and isinstance(metric, Metric)
    assert set(t.options("loss")) == set(t.loss_options) and set(t.options("eval")) == set(t.metric_options)
    # a prediction of the right shape gives a finite loss and the declared metrics
    C = t.channels
    pred = torch.randn(2, C, 8, 8)
    if t.kind == "class_map":
        target = torch.randint(0, C, (2, 8, 8))
    elif t.kind == "binary_map":
        target = (torch.rand(2, 1, 8, 8) > 0.7).float()
    elif t.kind == "vector_field":
        target = torch.nn.functional.normalize(torch.randn(2, C, 8, 8), dim=1)
    else:
        target = torch.rand(2, 1, 8, 8) + 0.5
    assert torch.isfinite(loss(pred, target))
    metric.update(pred, target)
    out = metric.compute()
    assert t.headline in out and all(m in out for m in t.shown_metrics())
    # both a label and a prediction draw as an HxWx3 picture
    for x, is_pred in ((target[0], False), (pred[0], True)):
        rgb = t.draw(x, prediction=is_pred)
        assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8


def test_headline_needs_a_direction():
    with pytest.raises(ValueError, match="headline"):
        Task("x", 1, ScalarMap(), "l1", "depth", headline="rmse", directions={"mae": False})
    assert get_task("semseg").direction("IoU_7") is True  # prefix rule
    with pytest.raises(ConfigError, match="no known direction"):
        higher_is_better("semseg", "bogus")


# ---------------------------------------------------------------- what the label kind decides


def test_pad_and_no_label_follow_the_kind():
    assert (ClassMap().no_label, BinaryMap().no_label, VectorField().no_label, ScalarMap().no_label) == (255, 255.0, 0.0, 0.0)
    for k in (ClassMap(), BinaryMap(), VectorField(), ScalarMap()):
        assert k.pad_value == k.no_label and k.resize_mode == "nearest"
    assert ClassMap().dtype == torch.long and ClassMap().layout == "[H,W]"
    s = build_dataset("synthetic", split="val", size=16, length=1).load(0)
    padded = T.pad(s, (20, 18))
    for t in ALL_TASKS:
        no = get_task(t).label.no_label
        assert (padded[t][..., 16:, :] == no).all() and (padded[t][..., :, 16:] == no).all(), t
        blank = invalid_label(t, s[t])
        assert blank.dtype == s[t].dtype and (blank == no).all(), t


def test_hflip_by_kind_on_tiny_arrays():
    cls = torch.tensor([[1, 2, 255]])
    assert torch.equal(ClassMap().hflip(cls), torch.tensor([[255, 2, 1]]))
    b = torch.tensor([[[0.0, 1.0, 255.0]]])
    assert torch.equal(BinaryMap().hflip(b), torch.tensor([[[255.0, 1.0, 0.0]]]))
    n = torch.tensor([[[0.6, 0.0]], [[0.0, 1.0]], [[0.8, 0.0]]])  # [3,1,2]: (0.6,0,0.8) then (0,1,0)
    f = get_task("normals").label.hflip(n)
    assert torch.equal(f, torch.tensor([[[-0.0, -0.6]], [[1.0, 0.0]], [[0.0, 0.8]]]))
    assert torch.equal(n, torch.tensor([[[0.6, 0.0]], [[0.0, 1.0]], [[0.8, 0.0]]]))  # input untouched
    uv = torch.tensor([[[1.0, 2.0]], [[3.0, 4.0]]])  # a 2-D flow: u along x changes sign, v does not
    assert torch.equal(VectorField((0,)).hflip(uv), torch.tensor([[[-2.0, -1.0]], [[4.0, 3.0]]]))
    assert torch.equal(VectorField(()).hflip(uv), uv.flip(-1))
    d = torch.tensor([[[1.0, 2.0, 0.0]]])
    assert torch.equal(ScalarMap().hflip(d), torch.tensor([[[0.0, 2.0, 1.0]]]))


def test_zoom_power_scales_labels():
    s = {"image": torch.rand(3, 2, 2), "depth": torch.full((1, 2, 2), 3.0), "normals": torch.ones(3, 2, 2)}
    out = T.resize(s, (4, 4), depth_scale=2.0)
    assert (out["depth"] == 1.5).all() and (out["normals"] == 1).all()


# ---------------------------------------------------------------- options


def test_new_option_keys_reach_loss_and_metric():
    cfg = load_config(data={"data": {"tasks": ["edge", "sal"]},
                            "loss": {"options": {"edge": {"pos_weight": 0.8}}},
                            "eval": {"options": {"edge": {"thresholds": 7, "val_thresholds": 3, "max_dist": 0.02},
                                                 "sal": {"headline": "b"}}}})
    crit = MultiTaskLoss(cfg.data.tasks, cfg.loss.options)
    assert crit.losses["edge"].pos_weight == 0.8 and crit.losses["sal"].pos_weight is None
    full, val = metric_options(cfg)["options"], metric_options(cfg, validation=True)["options"]
    assert full["edge"]["thresholds"] == 7 and val["edge"]["thresholds"] == 3 and full["edge"]["edge_max_dist"] == 0.02
    m = MultiTaskMetrics(cfg.data.tasks, **metric_options(cfg)).metrics
    assert len(m["edge"].thresholds) == 7 and m["edge"].max_dist == 0.02 and m["sal"].headline == "b"
    # without options: the tasks' defaults and the dataset's edge tolerance
    d = metric_options(load_config(data={"data": {"tasks": ["edge", "semseg"]}}))["options"]
    assert d["edge"] == {"thresholds": None, "workers": 0, "protocol": "fast", "edge_max_dist": 0.011}
    assert d["semseg"]["num_classes"] == 10  # thresholds None: the protocol's own (fast: 99)


@pytest.mark.parametrize("old,value,new", [
    ("loss.edge_pos_weight", 0.8, ("loss", "edge", "pos_weight")),
    ("eval.edge_thresholds", 19, ("eval", "edge", "thresholds")),
    ("eval.val_edge_thresholds", 5, ("eval", "edge", "val_thresholds")),
    ("eval.edge_max_dist", 0.02, ("eval", "edge", "max_dist")),
    ("eval.sal_headline", "b", ("eval", "sal", "headline")),
])
def test_old_keys_are_aliases(old, value, new):
    section, task, key = new
    cfg = load_config(overrides=[f"{old}={value}"])
    assert getattr(cfg, section).options[task][key] == value
    again = load_config(data=__import__("yaml").safe_load(to_yaml(cfg)))  # the resolved config reloads as it is
    assert getattr(again, section).options == getattr(cfg, section).options
    new_key = f"{section}.options.{task}.{key}"
    both = {section: {old.split(".")[1]: value, "options": {task: {key: value}}}}
    with pytest.raises(ConfigError) as e:  # both names in one file: which one is meant is unclear
        load_config(data=both)
    assert new_key in str(e.value) and "\n" not in str(e.value)
    # on the command line an old name lands on the new key, and the last --set wins, as always
    later = load_config(overrides=[f"{new_key}={value}", f"{old}={value}"])
    assert getattr(later, section).options[task][key] == value


def test_old_run_config_loads():
    """A config.yaml written before the options moved (every old key present) loads."""
    old = {"loss": {"weights": {}, "edge_pos_weight": 0.95, "weighting": "fixed"},
           "eval": {"batch_size": 16, "sal_headline": "a", "edge_thresholds": 99, "val_edge_thresholds": 9,
                    "edge_max_dist": None}}
    cfg = load_config(data=old)
    assert cfg.loss.options == {"edge": {"pos_weight": 0.95}}
    assert cfg.eval.options == {"edge": {"thresholds": 99, "val_thresholds": 9, "max_dist": None}, "sal": {"headline": "a"}}


@pytest.mark.parametrize("override,match", [
    ("loss.options.edge.weight=0.5", "unknown loss.options.edge key.s. weight; valid: pos_weight$"),
    ("loss.options.sal.pos_weight=0.5", "unknown loss.options.sal key.s. pos_weight; valid: none$"),
    ("eval.options.edge.thresh=5", "valid: max_dist, protocol, thresholds, val_thresholds, workers$"),
    ("eval.options.flow.x=1", "unknown task 'flow'"),
    ("loss.options.edge.pos_weight=2.0", "pos_weight must be in"),
    ("eval.options.sal.headline=c", "sal_headline must be 'a' or 'b'"),
    ("eval.options.edge=3", "expected a mapping"),
])
def test_bad_options_are_one_line_errors(override, match):
    from tsn.validate import check_config  # the config knows no task: the registries' checks are here

    with pytest.raises(ConfigError, match=match) as e:
        check_config(load_config(overrides=[override]))
    assert "\n" not in str(e.value)


def test_a_temporary_task_is_gone_afterwards():
    t = Task("curv", 1, ScalarMap(), "l1", "depth", headline="rmse", directions={"rmse": False})
    with temporary_task(t):
        assert "curv" in TASKS and task_names()[-1] == "curv" and get_task("curv").kind == "scalar_map"
        with pytest.raises(ValueError, match="registered twice"):
            TASKS.add(t)
    assert "curv" not in TASKS and "curv" not in task_names()
