"""Task Affinity Grouping (Fifty et al., NeurIPS 2021): look-ahead affinities
measured during joint training, and the groupings they suggest.

Convention: ``Z[(i, j)]`` (or ``A[i][j]``) is the affinity of task i onto task
j, Z_{i->j} = 1 - L_j(theta after a step on L_i) / L_j(theta); higher means a
step on i helps j more.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

from tsn.errors import ConfigError
from tsn.grouping.selection import Group, Selection, select_groups

Pair = tuple[str, str]


def _pairs(A, tasks: Sequence[str]) -> dict[Pair, float]:
    """Read an affinity given as {(i, j): z}, {i: {j: z}} or a square matrix in ``tasks`` order."""
    tasks = list(tasks)
    out: dict[Pair, float] = {}
    if isinstance(A, Mapping):
        nested = all(isinstance(v, Mapping) for v in A.values())
        for i in tasks:
            for j in tasks:
                if i == j:
                    continue
                try:
                    out[(i, j)] = float(A[i][j] if nested else A[(i, j)])
                except KeyError:
                    raise ConfigError(f"affinity of {i!r} onto {j!r} missing") from None
    else:
        rows = A.tolist() if hasattr(A, "tolist") else A
        if len(rows) != len(tasks) or any(len(r) != len(tasks) for r in rows):
            raise ConfigError(f"affinity matrix must be {len(tasks)}x{len(tasks)} in task order {tasks}")
        for a, i in enumerate(tasks):
            for b, j in enumerate(tasks):
                if i != j:
                    out[(i, j)] = float(rows[a][b])
    bad = [k for k, v in out.items() if not math.isfinite(v)]
    if bad:
        raise ConfigError(f"non-finite affinity for {bad[0]}")
    return out


def affinity_to_scores(
    A, tasks: Sequence[str], groups: Sequence[Group] | None = None, singleton_score: float | None = None
) -> dict[Group, dict[str, float]]:
    """TAG's group scores: task t in group G scores mean_{u in G, u != t} A[u][t].

    That is the mean affinity *onto* t from the other members (how much
    training with them is expected to help t).  A singleton has no other
    member: with ``singleton_score=None`` (default) singletons are not
    candidates, which is what TAG's released code does in its overlapping
    mode (it gives them -1e6); pass e.g. 0.0 to allow a task to be trained
    alone with that neutral score.  ``groups`` defaults to every subset of
    ``tasks`` with >= 2 members.
    """
    tasks = list(tasks)
    if len(set(tasks)) != len(tasks) or not tasks:
        raise ConfigError(f"tasks must be non-empty and distinct, got {tasks}")
    z = _pairs(A, tasks)
    if groups is None:
        groups = [frozenset(c) for r in range(2, len(tasks) + 1) for c in itertools.combinations(tasks, r)]
        if singleton_score is not None:
            groups = [frozenset([t]) for t in tasks] + groups
    out: dict[Group, dict[str, float]] = {}
    for g in groups:
        g = frozenset(g)
        if not g <= set(tasks):
            raise ConfigError(f"group {sorted(g)} has tasks outside {tasks}")
        if len(g) == 1:
            if singleton_score is None:
                continue
            out[g] = {t: float(singleton_score) for t in g}
        else:
            out[g] = {t: sum(z[(u, t)] for u in g if u != t) / (len(g) - 1) for t in g}
    return out


def select_groups_by_affinity(
    A, tasks: Sequence[str], n_groups: int, singleton_score: float | None = None
) -> Selection:
    """Best TAG grouping with at most ``n_groups`` networks (exact, <= 8 tasks in ms).

    Rule (Fifty et al., overlapping groups as in their experiments): a
    grouping is a set of at most ``n_groups`` groups covering every task;
    each task is served by the chosen group in which it scores best
    (:func:`affinity_to_scores`), and the grouping maximising the sum of
    these per-task scores is returned (same optimum as TAG's mean).  Solved
    exactly by :func:`select_groups` with unit cost per group.
    """
    if not isinstance(n_groups, int) or n_groups < 1:
        raise ConfigError(f"n_groups must be an integer >= 1, got {n_groups!r}")
    scores = affinity_to_scores(A, tasks, singleton_score=singleton_score)
    if len(tasks) == 1:
        scores = {frozenset(tasks): {tasks[0]: float(singleton_score or 0.0)}}
    return select_groups(scores, {g: 1.0 for g in scores}, float(n_groups), lower_is_better=False)


@torch.no_grad()
def _apply(params: list[Tensor], grads: list[Tensor | None], lr: float) -> None:
    for p, g in zip(params, grads):
        if g is not None:
            p.sub_(g.to(p.dtype), alpha=lr)


def tag_affinity_step(
    model_params: list[Tensor],
    task_losses_fn: Callable[[], dict[str, Tensor]],
    lr: float,
    optimizer_like: str = "sgd",
    *,
    restore: list[Tensor] | None = None,
) -> dict[Pair, float]:
    """One TAG look-ahead measurement on the shared parameters.

    Calls ``task_losses_fn()`` once with grad to get L_j(theta) and every
    task's gradient on ``model_params`` (all gradients are taken before any
    parameter moves, so the graph stays valid); then for each task i takes
    theta' = theta - lr * grad L_i on the shared parameters only, recomputes
    all losses without grad and records Z_{i->j} = 1 - L_j(theta') / L_j(theta)
    (0 when L_j(theta) == 0).  Parameters are copied back after every look-ahead,
    so they end bit-identical; tensors in ``restore`` (e.g. BatchNorm running
    statistics, which the extra forward passes in train mode would update)
    are snapshotted before the first call and restored the same way.  ``task_losses_fn`` should
    evaluate the same batch each call (and be deterministic, e.g. no dropout)
    for the ratio to measure the step alone.  Call it outside the trainer's
    own forward/backward: the in-place restore bumps the parameters' version
    counters, invalidating any graph built before it.  Only plain SGD
    look-ahead (``optimizer_like="sgd"``) is implemented.
    """
    if optimizer_like != "sgd":
        raise ConfigError(f"optimizer_like {optimizer_like!r} not supported; valid: sgd")
    params = list(model_params)
    extra = list(restore or [])
    saved_extra = [b.detach().clone() for b in extra]  # before any extra forward
    losses = task_losses_fn()
    if not losses:
        raise ValueError("task_losses_fn returned no losses")
    tasks = list(losses)
    before = {t: float(losses[t].detach()) for t in tasks}
    grads: dict[str, list[Tensor | None]] = {}
    need = [p for p in params if p.requires_grad]
    for t in tasks:
        if not losses[t].requires_grad or not need:
            grads[t] = [None] * len(params)
            continue
        g = iter(torch.autograd.grad(losses[t], need, retain_graph=True, allow_unused=True))
        grads[t] = [next(g) if p.requires_grad else None for p in params]
    del losses

    saved = [p.detach().clone() for p in params]

    @torch.no_grad()
    def put_back() -> None:
        for p, s in zip(params, saved):
            p.copy_(s)
        for x, s in zip(extra, saved_extra):
            x.copy_(s)

    out: dict[Pair, float] = {}
    try:
        for i in tasks:
            _apply(params, grads[i], lr)
            with torch.no_grad():
                after = task_losses_fn()
            for j in tasks:
                a, b = float(after[j]), before[j]
                out[(i, j)] = 0.0 if b == 0 else 1.0 - a / b
            put_back()
    finally:
        put_back()  # also on errors, so a failed measurement never moves the model
    return out


class AffinityAccumulator:
    """Running mean of look-ahead affinities over training (TAG averages Z over steps).

    Pairs are averaged separately, so steps where a task is missing do not
    dilute its entries.  ``state_dict`` is plain Python for checkpoints.
    """

    def __init__(self) -> None:
        self.sums: dict[Pair, float] = {}
        self.counts: dict[Pair, int] = {}

    def update(self, z: Mapping[Pair, float]) -> None:
        for k, v in z.items():
            v = float(v)
            if not math.isfinite(v):
                continue
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.counts[k] = self.counts.get(k, 0) + 1

    def mean(self) -> dict[Pair, float]:
        return {k: self.sums[k] / self.counts[k] for k in self.sums}

    def matrix(self, tasks: Sequence[str]) -> dict[str, dict[str, float]]:
        """Nested A[i][j] (NaN where never measured)."""
        m = self.mean()
        return {i: {j: m.get((i, j), math.nan) for j in tasks} for i in tasks}

    def state_dict(self) -> dict:
        return {"pairs": [[i, j, self.sums[(i, j)], self.counts[(i, j)]] for i, j in self.sums]}

    def load_state_dict(self, state: dict) -> None:
        self.sums = {(i, j): float(s) for i, j, s, _ in state["pairs"]}
        self.counts = {(i, j): int(c) for i, j, _, c in state["pairs"]}
