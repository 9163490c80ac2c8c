"""What a dense task is, declared once: its label kind, loss, metric, and how it looks.

Every other module asks the task (``get_task(name)``) instead of switching on
its name, so a new task is one registered :class:`Task` (plus a dataset that
loads its label). The label *kind* fixes what follows from the label format
alone: the pad / "no label" value, how it is resized, how a horizontal flip
changes it, its tensor layout and the default drawing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tsn.errors import ConfigError
from tsn.registry import Registry

IGNORE_INDEX = 255


# ---------------------------------------------------------------- label kinds


class LabelKind:
    """Base of the four label formats; subclasses set the class attributes."""

    name: str = ""
    no_label: float = 0.0  # value of an unlabelled pixel; padding uses it too
    resize_mode: str = "nearest"  # nearest keeps ids, {0,1} maps and unit vectors valid
    layout: str = "[C,H,W]"  # tensor layout of one sample's label
    dtype: torch.dtype = torch.float32

    @property
    def pad_value(self) -> float:
        return self.no_label

    def invalid(self, like: Tensor) -> Tensor:
        """The all-unlabelled version of a label (same shape and dtype)."""
        return torch.full_like(like, self.no_label)

    def hflip(self, x: Tensor) -> Tensor:
        """Mirror the last (x) axis; kinds whose values carry a direction also change them."""
        return x.flip(-1)

    def to_tensor(self, a: np.ndarray) -> Tensor:
        """A dataset's numpy label [H,W] or [C,H,W] -> this kind's sample tensor."""
        t = torch.from_numpy(np.ascontiguousarray(a).astype(np.float32))
        return t[None] if t.dim() == 2 else t

    def draw(self, a: np.ndarray, prediction: bool, vmax: float | None = None) -> np.ndarray:
        """uint8 HxWx3 picture of one label (or raw prediction) as a numpy array."""
        raise NotImplementedError

    #: the file suffix of an exported prediction (:meth:`encode`)
    export_suffix: str = ".png"

    def encode(self, a: np.ndarray) -> bytes:
        """An exported prediction (``tsn.engine.geometry.export_value``) as the file the
        evaluators read: a PNG of the integer map; :class:`ScalarMap` stores float ``.npy``."""
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="PNG")
        return buf.getvalue()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ClassMap(LabelKind):
    """Integer class ids [H,W] (long); 255 = no label; logits are argmaxed to draw."""

    name = "class_map"
    no_label = IGNORE_INDEX
    layout = "[H,W]"
    dtype = torch.long

    def to_tensor(self, a):
        return torch.from_numpy(np.ascontiguousarray(a).astype(np.int64))

    def draw(self, a, prediction, vmax=None):
        from tsn.tasks import draw

        return draw.classes(a)


class BinaryMap(LabelKind):
    """Float {0,1} [1,H,W]; 255 = no label (as the community's losses and benchmarks treat it).

    Predictions are logits (sigmoid taken to draw them).
    """

    name = "binary_map"
    no_label = 255.0

    def draw(self, a, prediction, vmax=None):
        from tsn.tasks import draw

        return draw.binary(np.exp(-np.logaddexp(0.0, -a)) if prediction else a, self.no_label)  # stable sigmoid


class VectorField(LabelKind):
    """Float vectors [C,H,W]; the zero vector = no label.

    ``negate_on_hflip`` lists the components that point along x and so change
    sign when the image is mirrored (normals' x, a flow's u).
    """

    name = "vector_field"
    no_label = 0.0

    def __init__(self, negate_on_hflip: tuple[int, ...] = (0,), unit: bool = False) -> None:
        self.negate_on_hflip = tuple(negate_on_hflip)
        self.unit = bool(unit)  # unit vectors (normals): drawn as the usual (n+1)/2 RGB code

    def hflip(self, x):
        x = x.flip(-1)
        if self.negate_on_hflip:
            x = x.clone()
            for c in self.negate_on_hflip:
                x[c] = -x[c]
        return x

    def draw(self, a, prediction, vmax=None):
        from tsn.tasks import draw

        return draw.unit_vectors(a) if self.unit else draw.vectors(a, vmax)

    def __repr__(self) -> str:
        return f"VectorField(negate_on_hflip={self.negate_on_hflip}, unit={self.unit})"


class ScalarMap(LabelKind):
    """Float [1,H,W] regression target; 0 (or non-finite) = no label; drawn with a colour ramp."""

    name = "scalar_map"
    no_label = 0.0
    export_suffix = ".npy"  # metres (or any unit) as float32: a PNG would quantise them

    def encode(self, a):
        import io

        buf = io.BytesIO()
        np.save(buf, np.asarray(a, np.float32))
        return buf.getvalue()

    def draw(self, a, prediction, vmax=None):
        from tsn.tasks import draw

        return draw.ramp(a, vmax)


KINDS: dict[str, type[LabelKind]] = {k.name: k for k in (ClassMap, BinaryMap, VectorField, ScalarMap)}


# ---------------------------------------------------------------- task


@dataclass(frozen=True)
class Task:
    """Everything the library needs to know about one dense task.

    ``loss`` / ``metric`` are registry names (:data:`tsn.losses.LOSSES`,
    :data:`tsn.metrics.METRICS`) or builders: ``loss(task, **options)`` returns
    ``fn(pred, target) -> scalar``; ``metric(**kwargs)`` returns a
    :class:`tsn.metrics.Metric`. ``loss_options`` / ``metric_options`` are the
    keys a config may set under ``loss.options.<task>`` / ``eval.options.<task>``,
    with their defaults; ``metric_args(options, dataset_info, validation)``
    turns the latter into the metric's keyword arguments.
    """

    name: str
    channels: int  # default output channels; datasets may override (e.g. NYUD semseg 40)
    label: LabelKind
    loss: str | Callable[..., Callable[[Tensor, Tensor], Tensor]]
    metric: str | Callable[..., Any]
    headline: str  # metric key entering delta_m and tables (the paper's choice)
    directions: Mapping[str, bool]  # metric -> higher is better; "IoU_*" matches a prefix
    description: str = ""
    loss_options: Mapping[str, Any] = field(default_factory=dict)
    metric_options: Mapping[str, Any] = field(default_factory=dict)
    metric_args: Callable[[dict, Any, bool], dict] | None = None  # None: the options as they are
    shown: tuple[str, ...] = ()  # metrics in the console table (empty: the headline)
    zoom_power: float = 0.0  # a zoom by s (scene s times closer) multiplies the label by s**zoom_power
    colorize: Callable[..., np.ndarray] | None = None  # None: the label kind's drawing

    def __post_init__(self) -> None:
        if self.headline not in self.directions:
            raise ValueError(f"task {self.name!r}: headline {self.headline!r} has no direction")

    # -- label
    @property
    def kind(self) -> str:
        """The label kind's name: class_map | binary_map | vector_field | scalar_map."""
        return self.label.name

    # -- metrics
    @property
    def higher_is_better(self) -> bool:
        """Direction of the headline metric."""
        return self.directions[self.headline]

    def direction(self, metric: str) -> bool:
        """True if higher is better for ``metric``; ConfigError if the task declares none."""
        if metric in self.directions:
            return bool(self.directions[metric])
        for key, hib in self.directions.items():
            if key.endswith("*") and metric.startswith(key[:-1]):
                return bool(hib)
        raise ConfigError(f"no known direction for metric {metric!r} of task {self.name!r}")

    def shown_metrics(self) -> tuple[str, ...]:
        return self.shown or (self.headline,)

    # -- options
    def options(self, section: str, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Declared defaults of ``section`` ("loss" or "eval") updated by ``given``; unknown keys fail."""
        declared = self.loss_options if section == "loss" else self.metric_options
        given = dict(given or {})
        unknown = sorted(set(given) - set(declared))
        if unknown:
            valid = ", ".join(sorted(declared)) or "none"
            raise ConfigError(f"unknown {section}.options.{self.name} key(s) {', '.join(unknown)}; valid: {valid}")
        return {**declared, **given}

    def metric_kwargs(self, options: Mapping[str, Any] | None = None, info: Any = None, validation: bool = False) -> dict:
        """The metric's keyword arguments from config options and the dataset's facts."""
        opts = self.options("eval", options)
        return self.metric_args(opts, info, validation) if self.metric_args else opts

    # -- drawing
    def draw(self, x, prediction: bool = False, vmax: float | None = None) -> np.ndarray:
        """uint8 HxWx3 picture of one sample's label, or with ``prediction`` of the raw output."""
        a = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
        if self.colorize is not None:
            return self.colorize(a, prediction, vmax)
        return self.label.draw(a, prediction, vmax)


# ---------------------------------------------------------------- registry


class TaskRegistry(Registry[Task]):
    """Tasks by name, kept in registration order (the built-ins: the paper's column order)."""

    def add(self, task: Task) -> Task:
        self.register(task.name)(task)
        return task

    def ordered(self) -> list[str]:
        return list(self._items)

    def remove(self, name: str) -> None:
        self.get(name)
        del self._items[name]

    def __getitem__(self, name: str) -> Task:
        return self.get(name)


TASKS: TaskRegistry = TaskRegistry("task")


def register_task(task: Task) -> Task:
    """Register ``task`` (a name may be registered once)."""
    return TASKS.add(task)


def unregister_task(name: str) -> None:
    TASKS.remove(name)


@contextlib.contextmanager
def temporary_task(task: Task) -> Iterator[Task]:
    """Register ``task`` for the body of a ``with`` (tests, notebooks); always unregistered after."""
    register_task(task)
    try:
        yield task
    finally:
        unregister_task(task.name)


def get_task(name: str) -> Task:
    try:
        return TASKS.get(name)
    except ConfigError:
        raise ConfigError(f"unknown task {name!r}; valid: {', '.join(task_names())}") from None


def task_names() -> list[str]:
    """Registered task names in registration order (tables use it as the column order)."""
    return TASKS.ordered()


def check_tasks(names: list[str] | tuple[str, ...]) -> list[str]:
    """Validate a task list: known names, no duplicates, at least one."""
    names = list(names)
    if not names:
        raise ConfigError(f"the task list is empty; valid tasks: {', '.join(task_names())}")
    for n in names:
        get_task(n)
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"task(s) listed twice: {', '.join(dup)}")
    return names


def is_label(key: str) -> bool:
    """Whether a sample key is a task's label (sample dicts also hold ``image`` and ``meta``)."""
    return key in TASKS
