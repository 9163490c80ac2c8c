"""delta_m: hand-computed values, the paper's table, directions and errors."""

import json
from pathlib import Path

import pytest

from tsn.errors import ConfigError
from tsn.metrics import HEADLINE, delta_m, higher_is_better

REF = Path(__file__).resolve().parents[1] / "eval" / "reference" / "tsn_iccv2021.json"  # the paper's numbers, copied in


def test_headline_is_the_papers_choice():
    assert HEADLINE == {
        "edge": "odsF", "semseg": "mIoU", "parts": "mIoU",
        "normals": "mean", "sal": "mIoU", "depth": "rmse",
    }


def test_delta_m_hand_computed_sign_convention():
    single = {"semseg": {"mIoU": 50.0}, "normals": {"mean": 20.0}}
    # semseg 10% worse (45 < 50), normals 10% worse (22 > 20): +10
    assert delta_m({"semseg": {"mIoU": 45.0}, "normals": {"mean": 22.0}}, single) == pytest.approx(10.0)
    # both 10% better: -10
    assert delta_m({"semseg": {"mIoU": 55.0}, "normals": {"mean": 18.0}}, single) == pytest.approx(-10.0)
    # one better, one worse: cancels
    assert delta_m({"semseg": {"mIoU": 55.0}, "normals": {"mean": 22.0}}, single) == pytest.approx(0.0)
    assert delta_m(single, single) == 0.0


def test_delta_m_metric_choice_is_configurable():
    single = {"normals": {"mean": 20.0, "11.25": 40.0}}
    res = {"normals": {"mean": 20.0, "11.25": 44.0}}
    assert delta_m(res, single) == 0.0
    assert delta_m(res, single, metrics={"normals": "11.25"}) == pytest.approx(-10.0)  # higher is better
    assert higher_is_better("depth", "rmse") is False and higher_is_better("semseg", "IoU_3") is True
    with pytest.raises(ConfigError):
        delta_m(res, single, metrics={"normals": "nonsense"})
    with pytest.raises(ConfigError):
        delta_m({"edge": {"odsF": 1.0}}, single)
    with pytest.raises(ConfigError):
        delta_m({}, single)


def test_delta_m_reproduces_the_papers_table():
    ref = json.loads(REF.read_text())
    rows = {r["method"]: r for r in ref["main_table"]}
    st = rows["single-task"]
    tasks = ["edge", "semseg", "parts", "normals", "sal"]
    for r in ref["main_table"] + ref.get("embedding_ablation", []):
        if r["delta_m"] is None:
            continue
        res = {t: {HEADLINE[t]: r[t]} for t in tasks}
        # the single-task parts mIoU is 55.5 in the authors' README (55.3 in the paper);
        # with 55.5 every published delta_m is reproduced to within 0.08 (rounded inputs)
        single = {t: {HEADLINE[t]: (55.5 if t == "parts" else st[t])} for t in tasks}
        assert delta_m(res, single) == pytest.approx(r["delta_m"], abs=0.1), r
