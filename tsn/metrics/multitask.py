"""The multi-task measure delta_m (Maninis et al. 2019; the TSN paper's sign).

    delta_m = (1/T) * sum_t  -s_t * (M_mt,t - M_st,t) / M_st,t * 100

with s_t = +1 where higher is better and -1 where lower is better, so a
positive delta_m means the multi-task model is on average WORSE than the
single-task baselines (TSN reports 0.30 for itself; lower is better).
"""

from __future__ import annotations

from collections.abc import Mapping

from tsn.errors import ConfigError
from tsn.tasks import TASKS

#: The paper's metric per task: edge odsF, semseg/parts/sal mIoU, normals mean, depth rmse.
HEADLINE: dict[str, str] = {t: spec.headline for t, spec in TASKS.items()}

_LOWER_IS_BETTER = {
    "normals": {"mean", "median", "rmse"},
    "depth": {"rmse", "log_rmse", "abs_rel"},
}
_HIGHER_IS_BETTER = {
    "edge": {"odsF", "oisF", "AP", "odsP", "odsR"},
    "semseg": {"mIoU", "pixAcc"},
    "parts": {"mIoU", "pixAcc"},
    "normals": {"11.25", "22.5", "30"},
    "sal": {"mIoU", "maxF", "mIoU_a", "maxF_a", "mIoU_b", "maxF_b"},
}


def higher_is_better(task: str, metric: str) -> bool:
    """Direction of a metric; per-class keys such as ``IoU_3`` count as higher-better."""
    if task in TASKS and metric == TASKS[task].headline:
        return TASKS[task].higher_is_better
    if metric in _LOWER_IS_BETTER.get(task, ()):
        return False
    if metric in _HIGHER_IS_BETTER.get(task, ()) or metric.startswith("IoU_"):
        return True
    raise ConfigError(f"no known direction for metric {metric!r} of task {task!r}")


def delta_m(
    results: Mapping[str, Mapping[str, float]],
    single: Mapping[str, Mapping[str, float]],
    metrics: Mapping[str, str] | None = None,
) -> float:
    """Mean relative drop (%) of ``results`` against ``single`` over the tasks of ``results``.

    ``metrics`` overrides the metric per task (default :data:`HEADLINE`).
    """
    if not results:
        raise ConfigError("delta_m needs at least one task")
    chosen = {**HEADLINE, **(metrics or {})}
    drops = []
    for task, res in results.items():
        if task not in chosen:
            raise ConfigError(f"delta_m: no metric chosen for task {task!r}")
        m = chosen[task]
        if task not in single:
            raise ConfigError(f"delta_m: no single-task result for task {task!r}")
        if m not in res or m not in single[task]:
            raise ConfigError(f"delta_m: metric {m!r} missing for task {task!r}")
        base, val = float(single[task][m]), float(res[m])
        if base == 0:
            raise ConfigError(f"delta_m: single-task {task} {m} is 0; the relative drop is undefined")
        sign = 1.0 if higher_is_better(task, m) else -1.0
        drops.append(-sign * (val - base) / base * 100.0)
    return sum(drops) / len(drops)
