"""Claims decided by the declared test (tsn/claims.py): the t statistic and p
by hand (Student's t with 2 degrees of freedom has a closed form), verdicts,
pairing by seed, suites' claims in the tables, and one-line errors."""

from __future__ import annotations

import json
import math

import pytest

from tsn.claims import Claim, decide, parse_claims, t_test, verdict
from tsn.errors import ConfigError


def _p_df2(t: float) -> float:
    """Two-sided p of Student's t with 2 degrees of freedom: 1 - |t| / sqrt(t^2 + 2)."""
    return 1 - abs(t) / math.sqrt(t * t + 2)


def test_t_test_by_hand():
    t, p = t_test([1.0, 2.0, 3.0])  # mean 2, sd 1, t = 2 / (1 / sqrt 3)
    assert t == pytest.approx(2 * math.sqrt(3)) and p == pytest.approx(_p_df2(2 * math.sqrt(3)))
    t, p = t_test([-0.9, -1.0, -1.1])  # mean -1, sd 0.1
    assert t == pytest.approx(-10 * math.sqrt(3)) and p == pytest.approx(_p_df2(10 * math.sqrt(3)))
    assert t_test([4.0]) == (None, None)
    assert t_test([2.0, 2.0, 2.0]) == (math.inf, 0.0) and t_test([0.0, 0.0, 0.0]) == (0.0, 1.0)


def test_verdicts_follow_the_declared_rule():
    assert verdict([-0.9, -1.0, -1.1], t_test([-0.9, -1.0, -1.1])[1]) == "holds"
    assert verdict([0.9, 1.0, 1.1], t_test([0.9, 1.0, 1.1])[1]) == "does not hold"
    assert verdict([-1.0, -2.0, -3.0], t_test([-1.0, -2.0, -3.0])[1]) == "undecided"  # p = 0.074
    # two seeds never decide, however far apart (the test needs 3 differences)
    assert verdict([-50.0, -51.0], 0.001).startswith("undecided (2 of the 3")


def test_decide_pairs_by_seed_pools_pairs_and_reads_epochs():
    values = {"tsn": {0: {None: -5.0, 1: 30.0}, 1: {None: -4.0, 1: 40.0}, 2: {None: -6.0, 1: 20.0}},
              "md": {0: {None: -3.0, 1: 10.0}, 1: {None: -3.5, 1: 10.0}, 3: {None: 0.0}},
              "a2": {0: {None: 1.0}}, "b2": {0: {None: 2.0}}}
    res = decide(Claim("tsn better", ("tsn",), ("md",)), values)
    assert [(r["seed"], r["diff"]) for r in res["pairs"]] == [(0, -2.0), (1, -0.5)]  # seeds both have
    assert res["n"] == 2 and res["mean"] == pytest.approx(-1.25) and res["verdict"].startswith("undecided")
    res = decide(Claim("pooled", ("tsn", "a2"), ("md", "b2")), values)
    assert sorted(r["diff"] for r in res["pairs"]) == [-2.0, -1.0, -0.5]
    res = decide(Claim("faster", ("tsn",), ("md",), epoch=1), values)
    assert [r["diff"] for r in res["pairs"]] == [20.0, 30.0]
    res = decide(Claim("within 2", ("tsn",), within=2.0), values)
    assert [r["diff"] for r in res["pairs"]] == [-7.0, -6.0, -8.0]
    assert res["t"] == pytest.approx(-7 / (1 / math.sqrt(3))) and res["verdict"] == "holds"


@pytest.mark.parametrize("raw,msg", [
    ("x", "claims must be a list"),
    ([{"runs": ["a"], "within": 1}], r"claims\[0\] needs a 'claim' text"),
    ([{"claim": "c", "runs": ["a"], "than": ["b"], "within": 1}], "exactly one of 'than'"),
    ([{"claim": "c", "runs": ["a"]}], "exactly one of 'than'"),
    ([{"claim": "c", "runs": ["a", "b"], "than": ["c"]}], "one run name per entry of runs"),
    ([{"claim": "c", "runs": ["a"], "within": "x"}], "within must be a number"),
    ([{"claim": "c", "runs": ["a"], "than": ["b"], "epoch": -1}], "epoch must be an integer >= 0"),
    ([{"claim": "c", "runs": ["a"], "than": ["zz"]}], "no run named zz in the suite; runs: a, b"),
    ([{"claim": "c", "runs": ["a"], "than": ["b"], "metric": "x"}], r"unknown key\(s\) metric"),
])
def test_bad_claims_are_one_line(raw, msg):
    with pytest.raises(ConfigError, match=msg) as e:
        parse_claims(raw, "suite.yaml", ["a", "b"])
    assert "\n" not in str(e.value)


def test_tables_decide_the_suites_claims(tmp_path):
    from test_experiments import fake_run

    from eval.tables import collect, render

    main = tmp_path / "paper_main"
    st = {"semseg": {"mIoU": 50.0}, "normals": {"mean": 20.0}}
    for s in range(3):
        fake_run(main / "single_task" / f"seed{s}", "single_task", st)
        # semseg 10 % (tsn) and 4 % (md) better, normals equal: delta_m -5 and -2 + a per-seed wobble
        fake_run(main / "tsn" / f"seed{s}", "tsn", {"semseg": {"mIoU": 55.0 + 0.1 * s}, "normals": {"mean": 20.0}})
        fake_run(main / "multi_decoder" / f"seed{s}", "multi_decoder", {"semseg": {"mIoU": 52.0}, "normals": {"mean": 20.0}})
    (main / "sweep.json").write_text(json.dumps({"suite": "paper_main", "runs": [], "claims": [
        {"claim": "TSN better than multi-decoder", "runs": ["tsn"], "than": ["multi_decoder"]}]}))
    md, _, numbers = render(collect(tmp_path))
    (c,) = numbers["claims"]
    assert [r["diff"] for r in c["pairs"]] == pytest.approx([-3.0, -3.1, -3.2])
    assert c["verdict"] == "holds" and c["p"] == pytest.approx(_p_df2(c["t"]))
    row = next(line for line in md.splitlines() if "TSN better than multi-decoder" in line)
    assert "tsn − multi_decoder: s0 -3.00, s1 -3.10, s2 -3.20" in row and row.endswith("| holds |")
    # a suite's claim may name another suite's run by its folder (../paper_main/tsn)
    other = tmp_path / "collapse_main"
    for s in range(3):
        fake_run(other / "fix" / f"seed{s}", "task_in", {"semseg": {"mIoU": 54.0}, "normals": {"mean": 20.0}})
    (other / "sweep.json").write_text(json.dumps({"suite": "collapse_main", "runs": [], "claims": [
        {"claim": "TSN better than the fix", "runs": ["../paper_main/tsn"], "than": ["fix"]}]}))
    c = next(c for c in render(collect(tmp_path))[2]["claims"] if c["suite"] == "collapse_main")
    assert [r["diff"] for r in c["pairs"]] == pytest.approx([-1.0, -1.1, -1.2])  # -5 - 0.1 s against -4


def test_suites_reject_a_claim_on_a_run_they_do_not_have(tmp_path):
    from train.sweep import load_suite

    f = tmp_path / "s.yaml"
    f.write_text("name: s\nconfigs: {synthetic: configs/synthetic}\nruns: [{name: tsn, config: tsn.yaml}]\n"
                 "claims: [{claim: c, runs: [tsn], than: [md]}]\n")
    with pytest.raises(ConfigError, match=r"claims\[0\]: no run named md in the suite; runs: tsn"):
        load_suite(f)
