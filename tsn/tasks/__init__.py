"""The dense tasks this project knows: one module per task, each registering a :class:`Task`.

``get_task(name)`` is the single source of truth for a task's output
channels, label kind (and so its pad / no-label value, resize and flip rule),
loss, metric and their options, headline metric and metric directions, and
drawing. Registration order is the tables' column order (the paper's, then
depth). See :mod:`tsn.tasks.base`; ``temporary_task`` registers one for a test.
"""

from __future__ import annotations

from tsn.tasks.base import (
    IGNORE_INDEX,
    KINDS,
    TASKS,
    BinaryMap,
    ClassMap,
    LabelKind,
    ScalarMap,
    Task,
    TaskRegistry,
    VectorField,
    check_tasks,
    get_task,
    is_label,
    register_task,
    task_names,
    temporary_task,
    unregister_task,
)
from tsn.tasks import edge, semseg, parts, normals, sal, depth  # noqa: F401,E401  (register, in this order)

TaskSpec = Task  # the old name
#: The built-in tasks (registered above); ``task_names()`` also lists tasks registered later.
ALL_TASKS: tuple[str, ...] = tuple(task_names())

__all__ = [
    "ALL_TASKS", "IGNORE_INDEX", "KINDS", "TASKS", "BinaryMap", "ClassMap", "LabelKind", "ScalarMap", "Task",
    "TaskRegistry", "TaskSpec", "VectorField", "check_tasks", "get_task", "is_label", "register_task",
    "task_names", "temporary_task", "unregister_task",
]
