"""Loss weighting methods for multi-task training: fixed, uncertainty, dwa, gradnorm,
and the gradient-balancing methods through torchjd (tsn/weighting/jd.py).

``build_weighting(name, tasks, weights, **opts)`` is the one entry point; the
config's static per-task weights are passed as ``weights`` and every method
multiplies or initialises from them.
"""

from __future__ import annotations

import inspect

from tsn.errors import ConfigError
from tsn.weighting.base import WEIGHTINGS, Weighting, check_weighting_args
from tsn.weighting.dwa import DWAWeighting
from tsn.weighting.fixed import FixedWeighting
from tsn.weighting.gradnorm import GradNormWeighting
from tsn.weighting.jd import JD_METHODS  # noqa: F401  (registers upgrad, mgda, pcgrad, cagrad, nash_mtl, imtl_g)
from tsn.weighting.uncertainty import UncertaintyWeighting


def build_weighting(
    name: str, tasks: list[str], weights: dict[str, float] | None = None, **opts
) -> Weighting:
    """Build a weighting by registry name; unknown names or options fail listing valid ones."""
    cls = WEIGHTINGS.get(name)
    tasks = list(tasks)
    check_weighting_args(tasks, weights)
    sig = inspect.signature(cls.__init__)
    valid = [p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    bad = sorted(set(opts) - set(valid))
    if bad:
        raise ConfigError(
            f"unknown option(s) {', '.join(bad)} for weighting {name!r}; "
            f"valid: {', '.join(valid) or 'none'}"
        )
    return cls(tasks, weights, **opts)


__all__ = [
    "WEIGHTINGS",
    "DWAWeighting",
    "FixedWeighting",
    "GradNormWeighting",
    "UncertaintyWeighting",
    "Weighting",
    "build_weighting",
]
