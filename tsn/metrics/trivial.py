"""The trivial predictor of every task, scored by the task's own metric.

A learned model is only worth reporting if it clearly beats the best
*constant* answer. Each label kind has one:

- class_map (semseg, parts): the majority class everywhere (background on
  parts, usually background on semseg);
- binary_map (edge, sal): nothing, i.e. no edge / no salient pixel anywhere;
- scalar_map (depth): the mean of the valid labels everywhere (the constant
  that minimises the RMSE);
- vector_field (normals): the mean valid vector, normalised, everywhere (the
  "majority" normal).

The constants are fitted on a split's labels (by default the evaluated split
itself: the best constant in hindsight, a stricter bar than one fitted on the
training split) and then scored with the same :class:`MultiTaskMetrics` that
scores the models, so the numbers sit in the same tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from tsn.tasks import get_task

NOTHING_LOGIT = -30.0  # sigmoid(-30) ~ 1e-13: no threshold of any metric counts it as positive


class TrivialStats:
    """Additive label statistics per task, from which the constants follow."""

    def __init__(self, tasks: Iterable[str], num_classes: Mapping[str, int]) -> None:
        self.tasks = list(tasks)
        self.num_classes = dict(num_classes)
        self.counts: dict[str, Tensor] = {}
        self.sums: dict[str, Tensor] = {}
        self.n: dict[str, int] = {}
        for t in self.tasks:
            kind = get_task(t).kind
            if kind == "class_map":
                self.counts[t] = torch.zeros(self.num_classes[t], dtype=torch.int64)
            elif kind in ("scalar_map", "vector_field"):
                self.sums[t] = torch.zeros(get_task(t).channels if kind == "vector_field" else 1, dtype=torch.float64)
                self.n[t] = 0

    def update(self, targets: Mapping[str, Tensor]) -> None:
        for t in self.tasks:
            if t not in targets:
                continue
            y = targets[t]
            kind = get_task(t).kind
            if kind == "class_map":
                c = self.num_classes[t]
                v = y[(y >= 0) & (y < c)].long()  # the ignore label is outside [0, c)
                self.counts[t] += torch.bincount(v, minlength=c).cpu()
            elif kind == "scalar_map":
                v = y[torch.isfinite(y) & (y > 0)].double()  # the depth metric's validity rule
                self.sums[t] += v.sum().cpu()
                self.n[t] += v.numel()
            elif kind == "vector_field":
                y = y.double()
                valid = (y.abs().sum(dim=1) > 0) & torch.isfinite(y).all(dim=1)  # zero vector = no label
                self.sums[t] += y.movedim(1, -1)[valid].sum(0).cpu()
                self.n[t] += int(valid.sum())

    def constants(self) -> dict[str, Any]:
        """The trivial answer per task (class id, value, unit vector, or ``"nothing"``)."""
        out: dict[str, Any] = {}
        for t in self.tasks:
            kind = get_task(t).kind
            if kind == "class_map":
                out[t] = {"class": int(self.counts[t].argmax()),
                          "share": float(self.counts[t].max() / self.counts[t].sum().clamp_min(1))}
            elif kind == "scalar_map":
                out[t] = {"value": float(self.sums[t][0] / max(1, self.n[t]))}
            elif kind == "vector_field":
                s = self.sums[t]
                out[t] = {"vector": [float(x) for x in s / s.norm().clamp_min(1e-12)]}
            else:
                out[t] = "nothing"
        return out


def trivial_predictions(constants: Mapping[str, Any], shape: tuple[int, int, int], channels: Mapping[str, int],
                        tasks: Iterable[str]) -> dict[str, Tensor]:
    """Raw model-style outputs of the trivial predictor for ``shape`` = (B, H, W)
    (logits for class and binary maps, values otherwise)."""
    b, h, w = shape
    preds: dict[str, Tensor] = {}
    for t in tasks:
        kind, c = get_task(t).kind, channels[t]
        if kind == "class_map":
            p = torch.zeros(b, c, h, w)
            p[:, constants[t]["class"]] = 1.0
        elif kind == "binary_map":
            p = torch.full((b, c, h, w), NOTHING_LOGIT)
        elif kind == "scalar_map":
            p = torch.full((b, c, h, w), constants[t]["value"])
        else:
            p = torch.tensor(constants[t]["vector"], dtype=torch.float32).view(1, -1, 1, 1).expand(b, -1, h, w).clone()
        preds[t] = p
    return preds


class TrivialModel(nn.Module):
    """The trivial predictor as a model (``model(x, tasks=...)``), so that the
    project's own evaluation loop (and its geometry handling) scores it."""

    def __init__(self, constants: Mapping[str, Any], channels: Mapping[str, int]) -> None:
        super().__init__()
        self.constants, self.task_channels = dict(constants), dict(channels)
        self.register_buffer("_anchor", torch.zeros(()))  # a device for the evaluation loop

    def forward(self, x: Tensor, tasks: list[str] | None = None) -> dict[str, Tensor]:
        tasks = list(tasks or self.task_channels)
        preds = trivial_predictions(self.constants, (x.shape[0], *x.shape[-2:]), self.task_channels, tasks)
        return {t: p.to(x.device) for t, p in preds.items()}


def fit_trivial(batches: Iterable[Mapping[str, Any]], tasks: list[str], num_classes: Mapping[str, int]) -> TrivialStats:
    """One pass over a split's labels."""
    stats = TrivialStats(tasks, num_classes)
    for batch in batches:
        stats.update({t: batch[t] for t in tasks if isinstance(batch.get(t), Tensor)})
    return stats


def trivial_metrics(loader, tasks: list[str], channels: Mapping[str, int], metrics,
                    fit_loader=None) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """Fit the constants on ``fit_loader`` (default: ``loader``), score them on
    ``loader`` with ``metrics`` (a :class:`~tsn.metrics.MultiTaskMetrics`).
    Returns (metrics per task, the constants)."""
    from tsn.engine.evaluate import evaluate

    constants = fit_trivial(fit_loader if fit_loader is not None else loader, tasks, channels).constants()
    res = evaluate(TrivialModel(constants, channels), loader, tasks, metrics, torch.device("cpu"))
    return res.metrics, constants


__all__ = ["NOTHING_LOGIT", "TrivialModel", "TrivialStats", "fit_trivial", "trivial_metrics", "trivial_predictions"]
