"""The trivial predictor: constants fitted from labels, scored by the project's metrics
(hand-computed values on tiny fake data), and the CLI end to end."""

import json
import math

import pytest
import torch

from tsn.metrics import MultiTaskMetrics
from tsn.metrics.trivial import NOTHING_LOGIT, TrivialModel, TrivialStats, trivial_metrics

TASKS = ["semseg", "depth", "normals", "sal"]
CH = {"semseg": 3, "depth": 1, "normals": 3, "sal": 1}


def _batch():
    semseg = torch.tensor([[[0, 0, 1], [255, 1, 1]]])  # class 1: 3 px, class 0: 2 px, 1 ignored
    depth = torch.tensor([[[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]]])  # mean of valid = 2
    normals = torch.zeros(1, 3, 2, 3)
    normals[0, 0, 0, 0] = normals[0, 0, 0, 1] = 1.0  # (1,0,0) twice
    normals[0, 1, 0, 2] = 1.0  # (0,1,0) once, the rest unlabelled
    sal = torch.tensor([[[[1.0, 0.0, 0.0], [0.0, 1.0, 255.0]]]])
    return {"image": torch.zeros(1, 3, 2, 3), "semseg": semseg, "depth": depth, "normals": normals, "sal": sal}


def test_constants_by_hand():
    stats = TrivialStats(TASKS, CH)
    stats.update(_batch())
    c = stats.constants()
    assert c["semseg"] == {"class": 1, "share": pytest.approx(3 / 5)}
    assert c["depth"]["value"] == pytest.approx(2.0)
    assert c["normals"]["vector"] == pytest.approx([2 / math.sqrt(5), 1 / math.sqrt(5), 0.0])
    assert c["sal"] == "nothing"


def test_statistics_are_additive_over_batches():
    one, two = TrivialStats(TASKS, CH), TrivialStats(TASKS, CH)
    b = _batch()
    one.update({k: torch.cat([v, v]) for k, v in b.items()})
    two.update(b)
    two.update(b)
    assert one.constants() == two.constants()


def test_model_outputs():
    c = {"semseg": {"class": 2}, "depth": {"value": 1.5}, "normals": {"vector": [0.0, 0.0, 1.0]}, "sal": "nothing"}
    p = TrivialModel(c, CH)(torch.zeros(2, 3, 4, 5), tasks=TASKS)
    assert p["semseg"].shape == (2, 3, 4, 5) and (p["semseg"].argmax(1) == 2).all()
    assert (p["depth"] == 1.5).all() and (p["sal"] == NOTHING_LOGIT).all()
    assert (p["normals"][:, 2] == 1).all() and (p["normals"][:, :2] == 0).all()


def test_metrics_by_hand():
    metrics = MultiTaskMetrics(TASKS, num_classes={"semseg": 3})
    res, consts = trivial_metrics([_batch()], TASKS, CH, metrics)
    # semseg: class 1 everywhere; IoU(1) = 3/5, IoU(0) = 0, class 2 absent (skipped)
    assert res["semseg"]["mIoU"] == pytest.approx(100 * (0.6 + 0.0) / 2)
    assert res["semseg"]["pixAcc"] == pytest.approx(60.0)
    assert res["depth"]["rmse"] == pytest.approx(math.sqrt(2 / 3))  # |1-2|, 0, |3-2| over 3 valid px
    a1, a2 = math.degrees(math.acos(2 / math.sqrt(5))), math.degrees(math.acos(1 / math.sqrt(5)))
    assert res["normals"]["mean"] == pytest.approx((2 * a1 + a2) / 3, abs=1e-3)
    assert res["sal"]["maxF"] == pytest.approx(0.0)  # nothing predicted: no true positive


def test_fit_on_another_split():
    other = _batch()
    other["depth"] = torch.full_like(other["depth"], 4.0)
    res, consts = trivial_metrics([_batch()], ["depth"], CH, MultiTaskMetrics(["depth"]), fit_loader=[other])
    assert consts["depth"]["value"] == pytest.approx(4.0)
    assert res["depth"]["rmse"] == pytest.approx(math.sqrt((9 + 4 + 1) / 3))


def test_cli_json(capsys):
    from eval.__main__ import main

    rc = main(["trivial", "configs/synthetic/tsn.yaml", "--json", "--set", "data.options.length.val=4",
               "--set", "data.options.cache=false", "--set", "data.tasks=[semseg,parts,depth,sal]"])
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["split"] == "val" and set(rep["results"]) == {"semseg", "parts", "depth", "sal"}
    assert rep["results"]["sal"]["maxF"] == 0.0
    assert 0 < rep["results"]["parts"]["mIoU"] <= 100


def test_cli_bad_config_is_one_line(capsys):
    from eval.__main__ import main

    assert main(["trivial", "configs/synthetic/tsn.yaml", "--set", "data.nope=1"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
