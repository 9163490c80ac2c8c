"""Depth: RMSE, log-RMSE and abs-rel pooled over every valid pixel of the split.

As Multi-Task-Learning-PyTorch's ``DepthMeter``: squared errors are summed
over all valid pixels of all images and the root is taken once at the end
(not a mean of per-image RMSEs), and the prediction is clamped to >= 1e-9 m
before every error so that the log is defined. A label of 0 (or a
non-finite one) is invalid. log-RMSE uses the natural log.

Each clamped pixel adds about (ln 1e-9)^2 ~ 430 to log-RMSE's sum, so a
fraction of a percent of predictions at or below zero decides that metric;
``clamped`` (% of valid pixels predicted below 1e-9 m, not in the paper)
says how many there were, so that a log-RMSE can be read.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from tsn.metrics.base import METRICS, Metric, as_map, check_same_size

MIN_DEPTH = 1e-9


@METRICS.register("depth")
class DepthMetric(Metric):
    task = "depth"

    def _zero_state(self) -> dict[str, Tensor]:
        return {
            "count": torch.zeros((), dtype=torch.int64),
            "sq": torch.zeros((), dtype=torch.float64),
            "log_sq": torch.zeros((), dtype=torch.float64),
            "abs_rel": torch.zeros((), dtype=torch.float64),
            "clamped": torch.zeros((), dtype=torch.int64),
        }

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> None:
        """``pred``, ``target``: depth in metres, [B,1,H,W] or [B,H,W]."""
        pred, target = as_map(pred), as_map(target).to(pred.device)
        check_same_size(pred, target, "depth")
        valid = torch.isfinite(target) & (target > 0)
        g = target[valid].double()
        raw = pred[valid].double()
        p = raw.clamp(min=MIN_DEPTH)
        self._add(
            count=torch.tensor(g.numel()),
            sq=((p - g) ** 2).sum(),
            log_sq=((p.log() - g.log()) ** 2).sum(),
            abs_rel=((p - g).abs() / g).sum(),
            clamped=(raw < MIN_DEPTH).sum(),
        )

    def compute(self) -> dict[str, float]:
        n = int(self._state["count"])
        if n == 0:
            return {k: float("nan") for k in ("rmse", "log_rmse", "abs_rel", "clamped")}
        s = self._state
        return {
            "rmse": math.sqrt(float(s["sq"]) / n),
            "log_rmse": math.sqrt(float(s["log_sq"]) / n),
            "abs_rel": float(s["abs_rel"]) / n,
            "clamped": 100.0 * int(s["clamped"]) / n,
        }
