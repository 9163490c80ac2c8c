"""The dense tasks this project knows, and what each one's label looks like.

One :class:`TaskSpec` per task is the single source of truth for the output
channel count, the label's dtype and invalid value, the headline metric and
its direction (used by delta_m and by model selection).
"""

from __future__ import annotations

from dataclasses import dataclass

from tsn.errors import ConfigError


@dataclass(frozen=True)
class TaskSpec:
    name: str
    channels: int  # default output channels; datasets may override (e.g. NYUD semseg 40)
    kind: str  # "binary" | "classes" | "normals" | "regression"
    headline: str  # metric key entering delta_m (the paper's choice)
    higher_is_better: bool  # direction of the headline metric
    description: str


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in [
        TaskSpec("edge", 1, "binary", "odsF", True, "boundary detection, float {0,1} [1,H,W]"),
        TaskSpec("semseg", 21, "classes", "mIoU", True, "semantic segmentation, long [H,W], 255 ignore"),
        TaskSpec("parts", 7, "classes", "mIoU", True, "human parts, long [H,W], 255 ignore"),
        TaskSpec("normals", 3, "normals", "mean", False, "surface normals, unit float [3,H,W], zero = invalid"),
        TaskSpec("sal", 1, "binary", "mIoU", True, "saliency, float {0,1} [1,H,W]"),
        TaskSpec("depth", 1, "regression", "rmse", False, "depth in metres, float [1,H,W], 0 = invalid"),
    ]
}

ALL_TASKS: tuple[str, ...] = tuple(TASKS)
IGNORE_INDEX = 255


def get_task(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(f"unknown task {name!r}; valid: {', '.join(ALL_TASKS)}") from None


def check_tasks(names: list[str] | tuple[str, ...]) -> list[str]:
    """Validate a task list: known names, no duplicates, at least one."""
    names = list(names)
    if not names:
        raise ConfigError(f"the task list is empty; valid tasks: {', '.join(ALL_TASKS)}")
    for n in names:
        get_task(n)
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"task(s) listed twice: {', '.join(dup)}")
    return names
