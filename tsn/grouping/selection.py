"""Choosing which groups of tasks to train together (Standley et al., ICML 2020).

Given, for candidate groups G, each member task's validation score in the
network trained on G and the cost of training/running that network, choose
a set of networks within a budget that covers every task and minimises the
sum over tasks of the task's best score among the chosen networks that
contain it (each task is served by its best network; overlap is allowed).
Scores are given in the caller's convention; ``lower_is_better=False``
maximises instead (used for affinities).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tsn.errors import ConfigError

Group = frozenset[str]


@dataclass(frozen=True)
class Selection:
    """A chosen set of networks and which one serves each task.

    ``total`` is the sum of ``task_scores`` in the caller's sign convention
    (lower is better unless ``lower_is_better=False`` was passed).  Groups
    that serve no task are dropped, so ``cost`` is what the choice costs.
    """

    groups: tuple[Group, ...]
    assignment: dict[str, Group]
    task_scores: dict[str, float]
    total: float
    cost: float


@dataclass
class _Problem:
    tasks: list[str]
    groups: list[Group]
    masks: list[int]
    costs: list[float]
    vals: list[list[float]]  # minimisation sign; inf where the task is not in the group
    sign: float
    budget: float


def _prepare(
    scores: Mapping[Group, Mapping[str, float]],
    costs: Mapping[Group, float],
    budget: float,
    lower_is_better: bool,
) -> _Problem:
    if not scores:
        raise ConfigError("no candidate groups to select from")
    if not isinstance(budget, (int, float)) or math.isnan(budget) or budget < 0:
        raise ConfigError(f"budget must be a number >= 0, got {budget!r}")
    tasks = sorted(set().union(*(frozenset(g) for g in scores)))
    index = {t: i for i, t in enumerate(tasks)}
    sign = 1.0 if lower_is_better else -1.0
    prob = _Problem(tasks, [], [], [], [], sign, float(budget))
    for g in sorted(scores, key=lambda g: (len(g), sorted(g))):
        g = frozenset(g)
        if not g:
            raise ConfigError("empty group among the candidates")
        row = scores[g]
        if set(row) != set(g):
            raise ConfigError(
                f"scores for group {sorted(g)} must name exactly its tasks, got {sorted(row)}"
            )
        if g not in costs:
            raise ConfigError(f"no cost given for group {sorted(g)}")
        c = float(costs[g])
        if not math.isfinite(c) or c < 0:
            raise ConfigError(f"cost of group {sorted(g)} must be finite and >= 0, got {c!r}")
        vals = [math.inf] * len(tasks)
        for t, v in row.items():
            v = float(v)
            if not math.isfinite(v):
                raise ConfigError(f"score of {t!r} in group {sorted(g)} is not finite: {v!r}")
            vals[index[t]] = sign * v
        if c > prob.budget:
            continue  # can never be afforded
        prob.groups.append(g)
        prob.masks.append(sum(1 << index[t] for t in g))
        prob.costs.append(c)
        prob.vals.append(vals)
    return prob


def _finish(prob: _Problem, chosen: Iterable[int]) -> Selection:
    """Assign each task to its best chosen group (first on ties); drop idle groups."""
    chosen = sorted(chosen)
    assignment: dict[str, Group] = {}
    task_scores: dict[str, float] = {}
    used: set[int] = set()
    total = 0.0
    for ti, t in enumerate(prob.tasks):
        best = min(chosen, key=lambda gi: prob.vals[gi][ti])
        used.add(best)
        assignment[t] = prob.groups[best]
        task_scores[t] = prob.sign * prob.vals[best][ti]
        total += prob.vals[best][ti]
    groups = tuple(prob.groups[gi] for gi in sorted(used))
    return Selection(groups, assignment, task_scores, prob.sign * total, sum(prob.costs[gi] for gi in sorted(used)))


def _infeasible(prob: _Problem) -> ConfigError:
    return ConfigError(
        f"no set of groups with total cost <= {prob.budget:g} covers all tasks {prob.tasks}"
    )


def _pareto(points: list[tuple[float, float, tuple[int, ...]]]) -> list[tuple[float, float, tuple[int, ...]]]:
    """Keep the (cost, value) points no other point beats in both (lower is better)."""
    points.sort(key=lambda p: (p[0], p[1]))
    out: list[tuple[float, float, tuple[int, ...]]] = []
    for p in points:
        if not out or p[1] < out[-1][1]:
            out.append(p)
    return out


def select_groups(
    scores: dict[Group, dict[str, float]],
    costs: dict[Group, float],
    budget: float,
    lower_is_better: bool = True,
) -> Selection:
    """Exact selection by dynamic programming over partitions of the tasks.

    Any selection is scored as if each task were assigned to its best chosen
    group; the tasks assigned to one group form a block, so an optimal
    selection is a partition of the tasks into blocks B, each served by one
    group G >= B at cost(G) with value sum_{t in B} score_G(t).  (Two blocks
    served by the same group are never better than their union, so allowing
    it changes nothing.)  For every subset S of tasks we keep the Pareto
    front of (cost, value) over partitions of S, built from S minus a block
    containing S's lowest task: O(3^n) block pairs times front sizes, which
    is milliseconds for 8 tasks and 255 candidates.  This replaces a
    branch-and-bound search, whose per-task bound ignores the budget and
    took minutes on 8-task affinity instances.  Ties in total are broken by
    lower cost.  Raises ConfigError when no selection within the budget
    covers every task.
    """
    prob = _prepare(scores, costs, budget, lower_is_better)
    n = len(prob.tasks)
    full = (1 << n) - 1
    limit = prob.budget + 1e-12 * max(1.0, prob.budget)

    # Pareto front of single groups serving exactly block B.
    block: list[list[tuple[float, float, tuple[int, ...]]]] = [[] for _ in range(full + 1)]
    for gi, m in enumerate(prob.masks):
        sub = m
        while sub:
            v = 0.0
            for ti in range(n):
                if sub >> ti & 1:
                    v += prob.vals[gi][ti]
            block[sub].append((prob.costs[gi], v, (gi,)))
            sub = (sub - 1) & m
    block = [_pareto(b) for b in block]

    front: list[list[tuple[float, float, tuple[int, ...]]]] = [[] for _ in range(full + 1)]
    front[0] = [(0.0, 0.0, ())]
    for s in range(1, full + 1):
        low = s & -s
        cand: list[tuple[float, float, tuple[int, ...]]] = []
        sub = s
        while sub:
            if sub & low and block[sub] and front[s ^ sub]:
                for c1, v1, g1 in block[sub]:
                    for c2, v2, g2 in front[s ^ sub]:
                        if c1 + c2 <= limit:
                            cand.append((c1 + c2, v1 + v2, g1 + g2))
            sub = (sub - 1) & s
        front[s] = _pareto(cand)
    if not front[full]:
        raise _infeasible(prob)
    best = min(front[full], key=lambda p: (p[1], p[0]))
    return _finish(prob, set(best[2]))


def brute_force_select(
    scores: dict[Group, dict[str, float]],
    costs: dict[Group, float],
    budget: float,
    lower_is_better: bool = True,
) -> Selection:
    """Reference: every subset of candidates (exponential; for tests on small cases)."""
    prob = _prepare(scores, costs, budget, lower_is_better)
    n, full = len(prob.tasks), (1 << len(prob.tasks)) - 1
    best_key, best_set = (math.inf, math.inf), None
    idx = range(len(prob.groups))
    for r in range(1, len(prob.groups) + 1):
        for combo in itertools.combinations(idx, r):
            cost = sum(prob.costs[g] for g in combo)
            if cost > prob.budget + 1e-12 * max(1.0, prob.budget):
                continue
            mask = 0
            for g in combo:
                mask |= prob.masks[g]
            if mask != full:
                continue
            total = 0.0
            for ti in range(n):
                total += min(prob.vals[g][ti] for g in combo)
            if (total, cost) < best_key:
                best_key, best_set = (total, cost), combo
    if best_set is None:
        raise _infeasible(prob)
    return _finish(prob, best_set)


def estimate_from_pairs(
    single_and_pair_scores: dict[Group, dict[str, float]],
    tasks: list[str],
    keep_measured: bool = True,
) -> dict[Group, dict[str, float]]:
    """Standley et al.'s higher-order approximation from single and pair results.

    For task t in a group G with |G| >= 2 the estimate is the mean over the
    other members u of t's score in the pair network {t, u}; a singleton
    keeps its single-task score.  Groups of size >= 3 that were actually
    measured (present in the input) keep their measured scores when
    ``keep_measured`` (a measurement beats an estimate).  Returns scores for
    every non-empty subset of ``tasks``.
    """
    tasks = list(tasks)
    if len(set(tasks)) != len(tasks) or not tasks:
        raise ConfigError(f"tasks must be non-empty and distinct, got {tasks}")
    src = {frozenset(g): dict(v) for g, v in single_and_pair_scores.items()}
    missing = []
    for t in tasks:
        if t not in src.get(frozenset([t]), {}):
            missing.append(f"{{{t}}}")
    for t, u in itertools.combinations(tasks, 2):
        row = src.get(frozenset([t, u]), {})
        if t not in row or u not in row:
            missing.append(f"{{{t},{u}}}")
    if missing:
        raise ConfigError(f"higher-order approximation needs scores for {', '.join(missing)}")
    out: dict[Group, dict[str, float]] = {}
    for r in range(1, len(tasks) + 1):
        for combo in itertools.combinations(tasks, r):
            g = frozenset(combo)
            if r == 1:
                out[g] = {combo[0]: float(src[g][combo[0]])}
            elif r >= 3 and keep_measured and g in src and set(src[g]) == set(g):
                out[g] = {t: float(v) for t, v in src[g].items()}
            else:
                out[g] = {
                    t: sum(float(src[frozenset([t, u])][t]) for u in combo if u != t) / (r - 1)
                    for t in combo
                }
    return out
