"""Claims a suite declares about its runs, decided by a test declared in advance.

A suite file (``configs/sweeps/*.yaml``) lists its claims under ``claims:``::

    claims:
      - {claim: "TSN within 2 points of single-task", runs: [tsn], within: 2.0}
      - {claim: "TSN better than multi-decoder", runs: [tsn], than: [multi_decoder]}
      - {claim: "... after epoch 1", runs: [tsn], than: [multi_decoder], epoch: 1}
      - {claim: "orthogonal better than Gaussian codes", runs: [orthogonal_d50, orthogonal_d100],
         than: [gaussian_d50, gaussian_d100]}

A run is named as in the suite, or as a folder relative to the suite's output
folder (``../paper_main/task_in``: a run of another suite in the same parent).
Every claim is about delta_m (lower is better): ``than`` pairs ``runs[i]`` with
``than[i]`` seed by seed, the difference being delta_m(run) - delta_m(than)
(negative: the claim's side is better); ``within: D`` takes delta_m(run) - D
(negative: within D points of the single-task reference). Several pairs pool
their per-seed differences into one test. ``epoch: k`` reads the validation
delta_m recorded after epoch k instead of the selected model's.

The test: two-sided one-sample t-test of the differences against 0 (for a
``than`` claim, the paired t-test over seeds), at p < ``ALPHA``. "holds" when
it rejects with a negative mean, "does not hold" when it rejects with a
positive one, "undecided" otherwise, and always with fewer than
``MIN_PAIRS`` differences, whatever their values.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from tsn.errors import ConfigError

ALPHA = 0.05
MIN_PAIRS = 3
CLAIM_KEYS = {"claim", "runs", "than", "within", "epoch"}


@dataclass(frozen=True)
class Claim:
    text: str
    runs: tuple[str, ...]
    than: tuple[str, ...] | None = None
    within: float | None = None
    epoch: int | None = None

    def pairs(self) -> list[tuple[str, str | None]]:
        return list(zip(self.runs, self.than)) if self.than is not None else [(r, None) for r in self.runs]


def parse_claims(raw, where: str, run_names: list[str] | None = None) -> list[Claim]:
    """``claims:`` of a suite; every error is one line naming the claim and the key."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: claims must be a list of mappings")
    out = []
    for i, c in enumerate(raw):
        at = f"{where}: claims[{i}]"
        if not isinstance(c, dict) or not isinstance(c.get("claim"), str) or not c["claim"]:
            raise ConfigError(f"{at} needs a 'claim' text")
        bad = set(c) - CLAIM_KEYS
        if bad:
            raise ConfigError(f"{at}: unknown key(s) {', '.join(sorted(bad))}; valid: {', '.join(sorted(CLAIM_KEYS))}")
        runs, than = c.get("runs"), c.get("than")
        if not isinstance(runs, list) or not runs or not all(isinstance(r, str) for r in runs):
            raise ConfigError(f"{at}: runs must be a non-empty list of run names")
        if (than is None) == (c.get("within") is None):
            raise ConfigError(f"{at}: give exactly one of 'than' (run names, one per run) or 'within' (delta_m points)")
        if than is not None and (not isinstance(than, list) or len(than) != len(runs)
                                 or not all(isinstance(r, str) for r in than)):
            raise ConfigError(f"{at}: than must list one run name per entry of runs ({len(runs)})")
        within = c.get("within")
        if within is not None and (isinstance(within, bool) or not isinstance(within, (int, float)) or not math.isfinite(within)):
            raise ConfigError(f"{at}: within must be a number of delta_m points, got {within!r}")
        epoch = c.get("epoch")
        if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0):
            raise ConfigError(f"{at}: epoch must be an integer >= 0, got {epoch!r}")
        if run_names is not None:  # a name with a "/" is a run folder relative to the suite's (../paper_main/tsn)
            unknown = [r for r in [*runs, *(than or [])] if "/" not in r and r not in run_names]
            if unknown:
                raise ConfigError(f"{at}: no run named {', '.join(unknown)} in the suite; runs: {', '.join(run_names)}")
        out.append(Claim(c["claim"], tuple(runs), tuple(than) if than is not None else None,
                         None if within is None else float(within), epoch))
    return out


def t_test(diffs: list[float]) -> tuple[float | None, float | None]:
    """(t, two-sided p) of the one-sample t-test of ``diffs`` against 0; (None, None) below 2 values."""
    n = len(diffs)
    if n < 2:
        return None, None
    mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
    if sd == 0:
        return (math.copysign(math.inf, mean), 0.0) if mean != 0 else (0.0, 1.0)
    from scipy.stats import t as student_t

    t = mean / (sd / math.sqrt(n))
    return t, float(2 * student_t.sf(abs(t), n - 1))


def verdict(diffs: list[float], p: float | None) -> str:
    if len(diffs) < MIN_PAIRS:
        return f"undecided ({len(diffs)} of the {MIN_PAIRS} differences the test needs)"
    if p is not None and p < ALPHA:
        return "holds" if statistics.fmean(diffs) < 0 else "does not hold"
    return "undecided"


def decide(claim: Claim, values: dict[str, dict[int, dict[int | None, float]]]) -> dict:
    """Decide ``claim`` from ``values[run][seed][epoch]`` = delta_m (epoch None: the
    selected model's). Returns the record the tables print."""
    rows = []
    for a, b in claim.pairs():
        va_seeds = values.get(a, {})
        seeds = sorted(set(va_seeds) & set(values.get(b, {}))) if b is not None else sorted(va_seeds)
        for s in seeds:
            va = va_seeds[s].get(claim.epoch)
            vb = values[b][s].get(claim.epoch) if b is not None else claim.within
            if va is not None and vb is not None:
                rows.append({"run": a, "than": b, "seed": s, "a": va, "b": vb, "diff": va - vb})
    diffs = [r["diff"] for r in rows]
    t, p = t_test(diffs)
    return {"claim": claim.text, "epoch": claim.epoch, "within": claim.within, "pairs": rows, "n": len(diffs),
            "mean": statistics.fmean(diffs) if diffs else None, "std": statistics.stdev(diffs) if len(diffs) > 1 else None,
            "t": t, "p": p, "verdict": verdict(diffs, p)}


__all__ = ["ALPHA", "MIN_PAIRS", "Claim", "decide", "parse_claims", "t_test", "verdict"]
