"""Surface normals: angular error in degrees, pooled over every valid pixel.

As ASTMT's ``eval_normals``: both prediction and label are L2-normalised, the
angle between them is taken per pixel, and mean, median, RMSE and the
percentage of pixels under 11.25, 22.5 and 30 degrees are computed over all
valid pixels of the split (not per image). A zero label vector is invalid.

The angle is ``atan2(|p x g|, p . g)``, which unlike ``acos(p . g)`` stays
accurate for small angles in float32 (acos loses ~0.02 deg near 0).

Median without storing every pixel: the state keeps a histogram of the
angles with ``bin_deg`` wide bins (default 0.001 deg, 180,000 int64 bins =
1.4 MB). The median's order statistic(s) are located exactly; the value
reported is the centre of their bin, so it is within ``bin_deg / 2`` (0.0005
deg by default) of numpy's exact median of all pixels' errors. Mean, RMSE and
the threshold percentages are exact (float64 sums and integer counts).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from tsn.metrics.base import METRICS, Metric, check_same_size

ANGLE_THRESHOLDS = (11.25, 22.5, 30.0)


def angular_error_deg(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Per-pixel angle (deg) between [B,3,H,W] vectors, and the validity mask [B,H,W]."""
    target = target.float()
    pred = pred.float()
    valid = (target.abs().sum(dim=1) > 0) & torch.isfinite(target).all(dim=1)
    p = pred / (pred.norm(dim=1, keepdim=True) + 1e-12)
    g = torch.nan_to_num(target)
    g = g / (g.norm(dim=1, keepdim=True) + 1e-12)
    cross = torch.linalg.cross(p, g, dim=1).norm(dim=1)
    dot = (p * g).sum(dim=1)
    return torch.rad2deg(torch.atan2(cross, dot)), valid


@METRICS.register("normals")
class NormalsMetric(Metric):
    task = "normals"

    def __init__(self, bin_deg: float = 1e-3) -> None:
        self.bin_deg = float(bin_deg)
        self.n_bins = int(math.ceil(180.0 / self.bin_deg)) + 1
        super().__init__()

    def config(self) -> dict[str, Any]:
        return {"bin_deg": self.bin_deg}

    def _zero_state(self) -> dict[str, Tensor]:
        return {
            "count": torch.zeros((), dtype=torch.int64),
            "sum": torch.zeros((), dtype=torch.float64),
            "sum_sq": torch.zeros((), dtype=torch.float64),
            "under": torch.zeros(len(ANGLE_THRESHOLDS), dtype=torch.int64),
            "hist": torch.zeros(self.n_bins, dtype=torch.int64),
        }

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> None:
        """``pred``: [B,3,H,W], any length (normalised here); ``target``: unit, 0 = invalid."""
        if pred.dim() != 4 or pred.shape[1] != 3 or target.shape[1:2] != (3,):
            raise ValueError(f"normals: expected [B,3,H,W], got {tuple(pred.shape)}, {tuple(target.shape)}")
        check_same_size(pred, target, "normals")
        deg, valid = angular_error_deg(pred, target.to(pred.device))
        d = deg[valid]
        d64 = d.double()
        idx = (d64 / self.bin_deg).floor().long().clamp(0, self.n_bins - 1)
        self._add(
            count=torch.tensor(d.numel()),
            sum=d64.sum(),
            sum_sq=(d64 * d64).sum(),
            under=torch.stack([(d < t).sum() for t in ANGLE_THRESHOLDS]),
            hist=torch.bincount(idx, minlength=self.n_bins),
        )

    def _order_stat(self, k: int) -> float:
        """Centre of the histogram bin holding the k-th smallest error (0-based)."""
        cum = torch.cumsum(self._state["hist"], 0)
        b = int(torch.searchsorted(cum, torch.tensor(k, dtype=torch.int64), right=True))
        return (b + 0.5) * self.bin_deg

    def compute(self) -> dict[str, float]:
        n = int(self._state["count"])
        if n == 0:
            nan = float("nan")
            return {"mean": nan, "median": nan, "rmse": nan, **{f"{t:g}": nan for t in ANGLE_THRESHOLDS}}
        if n % 2:
            median = self._order_stat(n // 2)
        else:
            median = 0.5 * (self._order_stat(n // 2 - 1) + self._order_stat(n // 2))
        s = self._state
        out = {
            "mean": float(s["sum"]) / n,
            "median": median,
            "rmse": math.sqrt(float(s["sum_sq"]) / n),
        }
        for t, c in zip(ANGLE_THRESHOLDS, s["under"].tolist()):
            out[f"{t:g}"] = 100.0 * c / n
        return out
