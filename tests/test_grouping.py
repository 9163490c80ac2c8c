"""Task grouping selection (Standley et al.) and TAG affinities (Fifty et al.)."""

import itertools
import random

import pytest
import torch

from tsn.errors import ConfigError
from tsn.grouping import (
    AffinityAccumulator,
    affinity_to_scores,
    brute_force_select,
    estimate_from_pairs,
    select_groups,
    select_groups_by_affinity,
    tag_affinity_step,
)

F = frozenset
PAIRS = {
    F("a"): {"a": 1.0},
    F("b"): {"b": 2.0},
    F("c"): {"c": 3.0},
    F("ab"): {"a": 0.8, "b": 1.9},
    F("ac"): {"a": 1.2, "c": 2.5},
    F("bc"): {"b": 2.2, "c": 2.7},
}


def test_higher_order_estimate_by_hand():
    est = estimate_from_pairs(PAIRS, ["a", "b", "c"])
    assert len(est) == 7
    assert est[F("b")] == {"b": 2.0}
    assert est[F("ab")] == {"a": 0.8, "b": 1.9}
    abc = est[F("abc")]
    assert abc["a"] == pytest.approx((0.8 + 1.2) / 2)
    assert abc["b"] == pytest.approx((1.9 + 2.2) / 2)
    assert abc["c"] == pytest.approx((2.5 + 2.7) / 2)
    measured = {**PAIRS, F("abc"): {"a": 0.5, "b": 0.5, "c": 0.5}}
    assert estimate_from_pairs(measured, list("abc"))[F("abc")] == {"a": 0.5, "b": 0.5, "c": 0.5}
    assert estimate_from_pairs(measured, list("abc"), keep_measured=False)[F("abc")] == abc
    with pytest.raises(ConfigError, match=r"\{b,c\}"):
        estimate_from_pairs({k: v for k, v in PAIRS.items() if k != F("bc")}, list("abc"))


def test_select_by_hand():
    scores = estimate_from_pairs(PAIRS, list("abc"))
    costs = {g: 1.0 for g in scores}
    one = select_groups(scores, costs, 1)
    assert one.groups == (F("abc"),) and one.total == pytest.approx(1.0 + 2.05 + 2.6)
    two = select_groups(scores, costs, 2)
    # {a,b} serves a and b, {a,c} serves c: 0.8 + 1.9 + 2.5
    assert set(two.groups) == {F("ab"), F("ac")} and two.total == pytest.approx(5.2)
    assert two.assignment == {"a": F("ab"), "b": F("ab"), "c": F("ac")}
    assert two.task_scores == {"a": 0.8, "b": 1.9, "c": 2.5} and two.cost == 2.0
    # more budget cannot improve on the per-task optimum; ties go to lower cost
    assert select_groups(scores, costs, 7) == two
    with pytest.raises(ConfigError, match="covers all tasks"):
        select_groups(scores, costs, 0.5)
    with pytest.raises(ConfigError, match="no cost"):
        select_groups(scores, {}, 1)


def _instance(rng, n):
    tasks = [f"t{i}" for i in range(n)]
    multi = [F(c) for r in range(2, n + 1) for c in itertools.combinations(tasks, r)]
    groups = [F([t]) for t in tasks if rng.random() < 0.8] + rng.sample(multi, rng.randint(2, 6))
    scores = {g: {t: rng.uniform(0.0, 1.0) for t in g} for g in groups}
    costs = {g: rng.choice([1.0, rng.uniform(0.3, 2.0)]) for g in groups}
    return scores, costs, rng.uniform(0.5, 5.0)


def test_select_matches_brute_force_random():
    rng = random.Random(1234)
    checked = infeasible = 0
    for _ in range(50):
        scores, costs, budget = _instance(rng, rng.choice([4, 5]))
        for lower in (True, False):
            try:
                ref = brute_force_select(scores, costs, budget, lower)
            except ConfigError:
                with pytest.raises(ConfigError):
                    select_groups(scores, costs, budget, lower)
                infeasible += 1
                continue
            got = select_groups(scores, costs, budget, lower)
            assert got.total == pytest.approx(ref.total, abs=1e-12)
            assert got.cost == pytest.approx(ref.cost, abs=1e-12)
            assert got.cost <= budget + 1e-9
            assert set(got.assignment) == set().union(*scores)
            for t, g in got.assignment.items():
                assert g in got.groups and got.task_scores[t] == scores[g][t]
            assert got.total == pytest.approx(sum(got.task_scores.values()))
            checked += 1
    assert checked > 40 and infeasible > 0


def test_affinity_scores_and_selection():
    A = {"a": {"b": 0.5, "c": -0.1}, "b": {"a": 0.5, "c": -0.1}, "c": {"a": -0.1, "b": -0.1}}
    s = affinity_to_scores(A, list("abc"))
    assert F("a") not in s
    assert s[F("abc")]["a"] == pytest.approx((0.5 - 0.1) / 2)
    assert s[F("ab")] == {"a": 0.5, "b": 0.5}
    sel = select_groups_by_affinity(A, list("abc"), 2)
    assert sel.total == pytest.approx(0.9) and F("ab") in sel.groups and sel.task_scores["c"] == -0.1
    sel = select_groups_by_affinity(A, list("abc"), 2, singleton_score=0.0)
    assert set(sel.groups) == {F("ab"), F("c")} and sel.total == pytest.approx(1.0)
    assert select_groups_by_affinity(A, list("abc"), 1).groups == (F("abc"),)
    # matrix and pair-dict forms agree
    M = [[0, 0.5, -0.1], [0.5, 0, -0.1], [-0.1, -0.1, 0]]
    pairs = {(i, j): A[i][j] for i in A for j in A[i]}
    assert affinity_to_scores(M, list("abc")) == s == affinity_to_scores(pairs, list("abc"))


def _quadratic():
    theta = torch.nn.Parameter(torch.zeros(2))
    head = torch.nn.Parameter(torch.ones(()))
    calls = torch.zeros(())

    def losses():
        calls.add_(1)  # stands in for BatchNorm running statistics
        return {
            "a": (theta[0] - 1) ** 2 + theta[1] ** 2,
            "b": (theta[0] + 1) ** 2 + (theta[1] - head) ** 2,
        }

    return theta, head, calls, losses


def test_tag_lookahead_hand_values():
    theta, head, calls, losses = _quadratic()
    z = tag_affinity_step([theta], losses, lr=0.1, restore=[calls])
    # before: L_a = 1, L_b = 2.  step on a: theta = (0.2, 0) -> L_a .64, L_b 2.44
    # step on b: grad (2, -2), theta = (-0.2, 0.2) -> L_a 1.48, L_b 1.28
    assert z[("a", "a")] == pytest.approx(0.36)
    assert z[("a", "b")] == pytest.approx(1 - 2.44 / 2)
    assert z[("b", "a")] == pytest.approx(1 - 1.48)
    assert z[("b", "b")] == pytest.approx(1 - 1.28 / 2)
    assert theta.tolist() == [0.0, 0.0] and head.item() == 1.0 and calls.item() == 0
    # parameters are still trainable afterwards
    sum(losses().values()).backward()
    assert theta.grad is not None and head.grad is not None


def test_tag_lookahead_restores_bit_exactly():
    torch.manual_seed(0)
    lin = torch.nn.Linear(5, 3)
    heads = torch.nn.Linear(3, 2)
    x, y = torch.randn(16, 5), torch.randn(16, 2)
    before = [p.detach().clone() for p in lin.parameters()]

    def losses():
        out = heads(torch.tanh(lin(x)))
        return {"u": ((out[:, 0] - y[:, 0]) ** 2).mean(), "v": ((out[:, 1] - y[:, 1]) ** 2).mean()}

    z = tag_affinity_step(list(lin.parameters()), losses, lr=0.37)
    assert set(z) == {("u", "u"), ("u", "v"), ("v", "u"), ("v", "v")}
    for p, b in zip(lin.parameters(), before):
        assert torch.equal(p, b)
    with pytest.raises(ConfigError):
        tag_affinity_step(list(lin.parameters()), losses, lr=0.1, optimizer_like="adam")


def test_affinity_accumulator():
    acc = AffinityAccumulator()
    acc.update({("a", "b"): 0.2, ("b", "a"): -0.1})
    acc.update({("a", "b"): 0.4})
    assert acc.mean() == pytest.approx({("a", "b"): 0.3, ("b", "a"): -0.1})
    assert acc.matrix(["a", "b"])["a"]["b"] == pytest.approx(0.3)
    acc2 = AffinityAccumulator()
    acc2.load_state_dict(acc.state_dict())
    assert acc2.mean() == acc.mean()
    assert select_groups_by_affinity(acc.matrix(["a", "b"]), ["a", "b"], 1).groups == (F("ab"),)
