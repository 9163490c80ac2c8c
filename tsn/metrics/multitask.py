"""The multi-task measure delta_m (Maninis et al. 2019; the TSN paper's sign).

    delta_m = (1/T) * sum_t  -s_t * (M_mt,t - M_st,t) / M_st,t * 100

with s_t = +1 where higher is better and -1 where lower is better, so a
positive delta_m means the multi-task model is on average WORSE than the
single-task baselines (TSN reports 0.30 for itself; lower is better).
"""

from __future__ import annotations

from collections.abc import Mapping

from tsn.errors import ConfigError
from tsn.tasks import TASKS, get_task


class _Headlines(Mapping[str, str]):
    """Task -> headline metric, read from the task registry (so it includes tasks registered later)."""

    def __getitem__(self, task: str) -> str:
        if task not in TASKS:
            raise KeyError(task)
        return TASKS[task].headline

    def __iter__(self):
        return iter(TASKS.ordered())

    def __len__(self) -> int:
        return len(TASKS.ordered())


#: The paper's metric per task: edge odsF, semseg/parts/sal mIoU, normals mean, depth rmse.
HEADLINE: Mapping[str, str] = _Headlines()


def higher_is_better(task: str, metric: str) -> bool:
    """Direction of a metric as its task declares it (per-class keys such as ``IoU_3`` included)."""
    return get_task(task).direction(metric)


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
