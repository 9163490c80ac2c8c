"""Streaming evaluation metrics per task, and the multi-task measure delta_m.

``build_metric(task, **opts)`` builds the metric the task declares
(:mod:`tsn.tasks`); ``MultiTaskMetrics(tasks, options=None, **opts)`` holds one
per task: ``options`` gives each task its own keyword arguments (what
``metric_options(cfg)`` builds from ``eval.options.<task>``); the flat ``opts``
are shared by name across tasks and each metric takes the ones its constructor
knows (``num_classes``, ``ignore_index``,
``absent_class``, ``bin_deg``, ``sal_headline``, ``edge_max_dist``,
``thresholds``, ``nms``, ``thin``, ``thin_gt``, ``quantize``, ``workers``);
an option no metric knows is a :class:`~tsn.errors.ConfigError`.
``num_classes`` may be an int or a dict keyed by task.

See docs/METRICS.md for every protocol choice and every difference from the
reference (MATLAB / ASTMT / MTL-PyTorch) evaluation.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from torch import Tensor

from tsn.errors import ConfigError
from tsn.metrics import depth as _depth  # noqa: F401  (registers)
from tsn.metrics import edge as _edge  # noqa: F401
from tsn.metrics import normals as _normals  # noqa: F401
from tsn.metrics import saliency as _saliency  # noqa: F401
from tsn.metrics import segmentation as _segmentation  # noqa: F401
from tsn.metrics.base import METRICS, Metric
from tsn.metrics.multitask import HEADLINE, delta_m, higher_is_better
from tsn.tasks import Task, check_tasks, get_task, task_names


def _accepted(cls) -> set[str]:
    fn = cls.__init__ if isinstance(cls, type) else cls
    return {p for p in inspect.signature(fn).parameters if p != "self"}


def _known_options() -> set[str]:
    builders = {metric_class(t) for t in task_names()} | {METRICS.get(n) for n in METRICS.names()}
    return set().union(*(_accepted(b) for b in builders))


def metric_class(task: str | Task):
    """The metric builder ``task`` declares (a name in :data:`METRICS` or a class)."""
    spec = task if isinstance(task, Task) else get_task(task)
    return METRICS.get(spec.metric) if isinstance(spec.metric, str) else spec.metric


def build_metric(task: str, **opts) -> Metric:
    """A fresh metric for ``task``; options meant for other tasks are ignored."""
    cls = metric_class(task)
    unknown = sorted(set(opts) - _known_options())
    if unknown:
        raise ConfigError(
            f"unknown metric option(s) {', '.join(unknown)}; valid: {', '.join(sorted(_known_options()))}"
        )
    kwargs = {k: v for k, v in opts.items() if k in _accepted(cls)}
    if isinstance(kwargs.get("num_classes"), dict):
        kwargs["num_classes"] = kwargs["num_classes"].get(task)
    return cls(**kwargs)


class MultiTaskMetrics:
    """One streaming metric per task, updated from prediction / label dicts."""

    def __init__(self, tasks: Iterable[str], options: Mapping[str, Mapping[str, Any]] | None = None, **opts) -> None:
        self.tasks = check_tasks(list(tasks))
        options = options or {}
        self.metrics: dict[str, Metric] = {t: build_metric(t, **{**opts, **options.get(t, {})}) for t in self.tasks}

    def update(self, preds: dict[str, Tensor], targets: dict[str, Tensor]) -> None:
        """Update every task that has both a prediction and a label in this batch."""
        for t, m in self.metrics.items():
            if t in preds and t in targets:
                m.update(preds[t], targets[t])

    def compute(self) -> dict[str, dict[str, float]]:
        return {t: m.compute() for t, m in self.metrics.items()}

    def reset(self) -> None:
        for m in self.metrics.values():
            m.reset()

    def merge(self, other: "MultiTaskMetrics") -> "MultiTaskMetrics":
        if other.tasks != self.tasks:
            raise ValueError(f"cannot merge metrics for {other.tasks} into {self.tasks}")
        for t in self.tasks:
            self.metrics[t].merge(other.metrics[t])
        return self

    def all_reduce(self) -> None:
        for m in self.metrics.values():
            m.all_reduce()

    def state(self) -> dict[str, dict[str, Tensor]]:
        return {t: m.state() for t, m in self.metrics.items()}

    def load_state(self, state: dict[str, dict[str, Tensor]]) -> None:
        for t, m in self.metrics.items():
            m.load_state(state[t])


__all__ = [
    "HEADLINE",
    "METRICS",
    "Metric",
    "MultiTaskMetrics",
    "build_metric",
    "delta_m",
    "higher_is_better",
]
