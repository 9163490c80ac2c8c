"""Edge detection: ODS F, OIS F and AP by boundary matching, under an edge protocol.

The protocol (:mod:`tsn.metrics.edge_protocols`) does the per-image work (prepare the soft
map, binarise, thin, match at every threshold) and the summary. The state is additive: per
threshold the split-wide sums of (cntR, sumR, cntP, sumP), plus the OIS sums (each image's
counts at its own best threshold, decided at update time since it depends on that image only).
So merging is a sum and distributed evaluation is exact.

Labels: 1 = boundary, 0 = not, anything else (e.g. 255) = void; an image without any valid
pixel is skipped. A label with several channels holds several annotators (BSDS500), one per
channel; a channel that is void everywhere is no annotator (so stacks can be padded to one
size), and a pixel void in any annotator is void. The prediction is a logit map (sigmoid taken
here).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tsn.errors import ConfigError
from tsn.metrics.base import METRICS, Metric, as_map
from tsn.metrics.edge_protocols import EdgeProtocol, get_protocol


def _image_counts(args) -> np.ndarray:
    protocol, p, gts, thresholds, radius, max_dist, void = args
    return protocol.image_counts(p, gts, thresholds, max_dist=max_dist, radius=radius, void=void)


@METRICS.register("edge")
class EdgeMetric(Metric):
    """Boundary P/R/F under an edge protocol (:mod:`tsn.metrics.edge_protocols`).

    Options: ``protocol`` ("fast": the training-time preset, default;
    "seism": the TSN paper's SEISM evaluation; "bsds": the BSDS500 bench),
    ``edge_max_dist`` (tolerance as a fraction of the diagonal of the map the
    metric receives, which is the original image's when the evaluation
    restores predictions to it; 0.0075 PASCAL, 0.011 NYUD), ``edge_max_dist_px``
    (the tolerance in pixels instead, e.g. ``max_dist x`` the original
    diagonal when a caller scores a map of another size), ``thresholds`` (None:
    the protocol's, 99 for fast / bsds, "hed" = SEISM's 101 for seism; an int n
    for n evenly spaced ones; or an increasing sequence in (0, 1]), ``workers``
    (processes for the per-image work; 0 = in this process). For the fast
    preset only: ``nms`` (edgesNms first, sign(0) = +1), ``thin`` (thin each
    binarised map; on), ``thin_gt`` (off), ``quantize`` (round to k/255; off);
    the other protocols fix these as their MATLAB code does.
    """

    task = "edge"

    def __init__(
        self,
        edge_max_dist: float = 0.0075,
        thresholds: int | str | Sequence[float] | None = None,
        protocol: str = "fast",
        edge_max_dist_px: float | None = None,
        nms: bool = False,
        thin: bool = True,
        thin_gt: bool = False,
        quantize: bool = False,
        workers: int = 0,
    ) -> None:
        if not 0 < edge_max_dist <= 1:
            raise ConfigError(f"edge_max_dist must be in (0, 1] (a fraction of the image diagonal), got {edge_max_dist}")
        if edge_max_dist_px is not None and not edge_max_dist_px > 0:
            raise ConfigError(f"edge_max_dist_px must be > 0, got {edge_max_dist_px}")
        self.options = {"nms": bool(nms), "thin": bool(thin), "thin_gt": bool(thin_gt), "quantize": bool(quantize)}
        self.protocol: EdgeProtocol = get_protocol(protocol).with_options(**self.options)
        self.max_dist = float(edge_max_dist)
        self.max_dist_px = None if edge_max_dist_px is None else float(edge_max_dist_px)
        self.thresholds = self.protocol.thresholds(thresholds)
        self.workers = int(workers)
        self._pool: Executor | None = None
        super().__init__()

    def config(self) -> dict[str, Any]:
        return {"protocol": self.protocol.name, "max_dist": self.max_dist, "max_dist_px": self.max_dist_px,
                "thresholds": tuple(np.round(self.thresholds, 12)), **self.options}

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

    def map(self, jobs: list) -> list[np.ndarray]:
        """Per-image counts of ``jobs`` (in this process or the pool)."""
        if self.workers > 0 and len(jobs) > 1:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers)
            return list(self._pool.map(_image_counts, jobs))
        return [_image_counts(j) for j in jobs]

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> None:
        """``pred``: logits [B,1,H,W]; ``target``: [B,K,H,W] (K annotators, usually 1) or [B,H,W],
        1 = boundary, 0 = not, else void."""
        pred = as_map(pred)
        if target.dim() == 3:
            target = target[:, None]
        if target.dim() != 4 or pred.shape[0] != target.shape[0] or pred.shape[-2:] != target.shape[-2:]:
            raise ValueError(f"edge metric: prediction {tuple(pred.shape)} and label {tuple(target.shape)} "
                             "differ in batch or spatial size; resize the prediction to the label first")
        prob = torch.sigmoid(pred.float()).cpu().numpy()
        tgt = target.cpu().numpy()
        jobs = []
        for p, t in zip(prob, tgt):
            valid = (t == 0) | (t == 1)
            present = valid.any(axis=(1, 2))  # a channel void everywhere is no annotator
            if not present.any():
                continue
            t, valid = t[present], valid[present]
            void = ~valid.all(axis=0)
            jobs.append((self.protocol, p, list(t == 1), self.thresholds, self.max_dist_px, self.max_dist,
                         void if void.any() else None))
        self.add_image_counts(self.map(jobs))

    def add_image_counts(self, per_image: Sequence[np.ndarray]) -> None:
        """Accumulate per-image [T, 4] count arrays (from :meth:`EdgeProtocol.image_counts`)."""
        for c in per_image:
            c = np.asarray(c, np.int64)
            self._add(counts=torch.from_numpy(c), ois=torch.from_numpy(self.protocol.ois(c)), images=torch.tensor(1))

    def compute(self) -> dict[str, float]:
        if int(self._state["images"]) == 0:
            return {k: float("nan") for k in ("odsF", "oisF", "AP", "odsP", "odsR", "odsT")}
        s = self.protocol.summarize(self.thresholds, self._state["counts"].numpy(), self._state["ois"].numpy())
        return {k: (v if k == "odsT" else 100.0 * v) for k, v in s.items()}
