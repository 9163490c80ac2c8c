"""Edge detection: ODS F, OIS F and AP by BSDS-style boundary matching.

The per-image work (binarise, thin, match at every threshold) is in
:mod:`tsn.metrics.boundary`. The state is additive: per threshold the
split-wide sums of (cntR, sumR, cntP, sumP), plus the OIS sums (each image's
counts at its own best threshold, decided at update time since it depends on
that image only). So merging is a sum and distributed evaluation is exact.

Labels: 1 = boundary, 0 = not, anything else (e.g. 255) = void; an image
without any valid pixel is skipped. The prediction is a logit map (sigmoid
taken here).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tsn.errors import ConfigError
from tsn.metrics import boundary
from tsn.metrics.base import METRICS, Metric, as_map, check_same_size

def _eval_one(args):
    return boundary.evaluate_image(*args)


@METRICS.register("edge")
class EdgeMetric(Metric):
    """BSDS boundary P/R/F.

    Options: ``edge_max_dist`` (0.0075 PASCAL, 0.011 NYUD), ``thresholds``
    (an int n for BSDS's n evenly spaced ones, default 99 = 0.01..0.99, or an
    increasing sequence in (0, 1], e.g. a handful for fast validation during
    training), ``nms`` (edgesNms on the soft map first; off, as the
    community's SEISM evaluation of raw sigmoid maps), ``thin`` (bwmorph thin
    of each binarised map; on, as BSDS), ``thin_gt`` (off, as BSDS),
    ``quantize`` (round probabilities to k/255 first, as the reference
    pipeline that stores predictions as 8-bit PNGs; off), ``workers``
    (processes for the per-image work; 0 = in this process).
    """

    task = "edge"

    def __init__(
        self,
        edge_max_dist: float = 0.0075,
        thresholds: int | Sequence[float] = 99,
        nms: bool = False,
        thin: bool = True,
        thin_gt: bool = False,
        quantize: bool = False,
        workers: int = 0,
    ) -> None:
        if not edge_max_dist > 0:
            raise ConfigError(f"edge_max_dist must be > 0, got {edge_max_dist}")
        if isinstance(thresholds, (int, np.integer)):
            if thresholds < 1:
                raise ConfigError(f"thresholds must be >= 1, got {thresholds}")
            th = boundary.default_thresholds(int(thresholds))
        else:
            th = np.asarray(list(thresholds), np.float64)
            if th.size == 0 or np.any(np.diff(th) <= 0) or th[0] <= 0 or th[-1] > 1:
                raise ConfigError("edge thresholds must be increasing and within (0, 1]")
        self.max_dist = float(edge_max_dist)
        self.thresholds = th
        self.nms, self.thin, self.thin_gt, self.quantize = bool(nms), bool(thin), bool(thin_gt), bool(quantize)
        self.workers = int(workers)
        self._pool: Executor | None = None
        super().__init__()

    def config(self) -> dict[str, Any]:
        return {
            "max_dist": self.max_dist,
            "thresholds": tuple(np.round(self.thresholds, 12)),
            "nms": self.nms,
            "thin": self.thin,
            "thin_gt": self.thin_gt,
            "quantize": self.quantize,
        }

    def _zero_state(self) -> dict[str, Tensor]:
        return {
            "counts": torch.zeros(len(self.thresholds), 4, dtype=torch.int64),
            "ois": torch.zeros(4, dtype=torch.int64),
            "images": torch.zeros((), dtype=torch.int64),
        }

    def __getstate__(self):
        d = self.__dict__.copy()
        d["_pool"] = None
        return d

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> None:
        """``pred``: logits [B,1,H,W]; ``target``: [B,1,H,W] with 1 = boundary, 0 = not."""
        pred, target = as_map(pred), as_map(target)
        check_same_size(pred, target, "edge")
        prob = torch.sigmoid(pred.float()).cpu().numpy()
        tgt = target.cpu().numpy()
        if self.quantize:
            prob = np.round(prob * 255.0) / 255.0
        jobs = []
        for p, t in zip(prob, tgt):
            gt = t == 1
            void = ~(gt | (t == 0))
            if void.all():
                continue
            jobs.append((p, gt, self.thresholds, self.max_dist, self.thin, self.thin_gt, self.nms,
                         void if void.any() else None))
        if self.workers > 0 and len(jobs) > 1:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers)
            results = list(self._pool.map(_eval_one, jobs))
        else:
            results = [_eval_one(j) for j in jobs]
        self.add_image_counts(results)

    def add_image_counts(self, per_image: Sequence[np.ndarray]) -> None:
        """Accumulate per-image [T, 4] count arrays (from :func:`boundary.evaluate_image`)."""
        for c in per_image:
            self._add(
                counts=torch.from_numpy(c),
                ois=torch.from_numpy(boundary.ois_counts(c)),
                images=torch.tensor(1),
            )

    def compute(self) -> dict[str, float]:
        if int(self._state["images"]) == 0:
            return {k: float("nan") for k in ("odsF", "oisF", "AP", "odsP", "odsR", "odsT")}
        s = boundary.summarize(self.thresholds, self._state["counts"].numpy(), self._state["ois"].numpy())
        return {k: (v if k == "odsT" else 100.0 * v) for k, v in s.items()}
