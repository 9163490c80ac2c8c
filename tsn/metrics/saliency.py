"""Saliency: both conventions of the dense multi-task community, always both.

(a) ASTMT ``eval_sal`` (what the TSN paper reports): 15 thresholds
    ``linspace(0.2, 0.9, 15)``, prediction binarised with ``p > t``; per image
    precision ``tp/(tp+fp+1e-12)``, recall ``tp/(tp+fn+1e-12)`` and IoU (1 if
    both the label and the binarised prediction are empty); each averaged over
    images per threshold; ``maxF_a`` = max over thresholds of
    ``2PR/(P+R+1e-12)`` on the averaged P and R (beta^2 = 1), ``mIoU_a`` = max
    over thresholds of the mean IoU.
(b) Multi-Task-Learning-PyTorch ``SaliencyMeter``: 19 thresholds 0.05..0.95
    step 0.05, ``p >= t``, TP / predicted / actual positives pooled over all
    pixels of the split; ``maxF_b`` with beta^2 = 0.3. We also report the
    pooled ``mIoU_b`` = max over thresholds of TP/(pred + actual - TP).

``headline`` ("a" or "b") decides which convention the plain ``mIoU`` and
``maxF`` keys (the ones delta_m and tables read) are copied from.

Labels other than 0/1 (e.g. 255) are void; an image without any valid pixel
is skipped. Undefined pooled ratios (0/0) count as 0, where the reference
code would produce NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from tsn.errors import ConfigError
from tsn.metrics.base import METRICS, Metric, as_map, check_same_size

THRESHOLDS_A = tuple(float(t) for t in np.linspace(0.2, 0.9, 15))
THRESHOLDS_B = tuple(round(0.05 * i, 2) for i in range(1, 20))


def _safe_div(a: Tensor, b: Tensor) -> Tensor:
    return torch.where(b > 0, a / b.clamp(min=1e-300), torch.zeros_like(a))


@METRICS.register("sal")
class SaliencyMetric(Metric):
    task = "sal"

    def __init__(self, sal_headline: str = "a", beta_sq_b: float = 0.3) -> None:
        if sal_headline not in ("a", "b"):
            raise ConfigError(f"sal_headline must be 'a' or 'b', got {sal_headline!r}")
        self.headline = sal_headline
        self.beta_sq_b = float(beta_sq_b)
        super().__init__()

    def config(self) -> dict[str, Any]:
        return {}

    def _zero_state(self) -> dict[str, Tensor]:
        ta, tb = len(THRESHOLDS_A), len(THRESHOLDS_B)
        return {
            "a_images": torch.zeros((), dtype=torch.int64),
            "a_prec": torch.zeros(ta, dtype=torch.float64),
            "a_rec": torch.zeros(ta, dtype=torch.float64),
            "a_iou": torch.zeros(ta, dtype=torch.float64),
            "b_tp": torch.zeros(tb, dtype=torch.int64),
            "b_pred": torch.zeros(tb, dtype=torch.int64),
            "b_gt": torch.zeros(tb, dtype=torch.int64),
        }

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> None:
        """``pred``: logits [B,1,H,W] (sigmoid taken here); ``target``: {0,1}, other = void."""
        prob = torch.sigmoid(as_map(pred).float())
        target = as_map(target).to(prob.device)
        check_same_size(prob, target, "sal")
        gt = target == 1
        valid = gt | (target == 0)
        has = valid.flatten(1).any(dim=1)
        prob, gt, valid = prob[has].flatten(1), gt[has].flatten(1), valid[has].flatten(1)
        gt_v = gt & valid
        n_gt = gt_v.sum(1).double()

        prec, rec, iou = [], [], []
        for t in THRESHOLDS_A:
            pm = (prob > t) & valid
            tp = (pm & gt_v).sum(1).double()
            n_pm = pm.sum(1).double()
            fp, fn = n_pm - tp, n_gt - tp
            prec.append((tp / (tp + fp + 1e-12)).sum())
            rec.append((tp / (tp + fn + 1e-12)).sum())
            union = tp + fp + fn
            iou.append(torch.where(union > 0, tp / union.clamp(min=1), torch.ones_like(tp)).sum())
        b_tp, b_pred = [], []
        for t in THRESHOLDS_B:
            pm = (prob >= t) & valid
            b_tp.append((pm & gt_v).sum())
            b_pred.append(pm.sum())
        self._add(
            a_images=has.sum(),
            a_prec=torch.stack(prec),
            a_rec=torch.stack(rec),
            a_iou=torch.stack(iou),
            b_tp=torch.stack(b_tp),
            b_pred=torch.stack(b_pred),
            b_gt=n_gt.sum().long().expand(len(THRESHOLDS_B)),
        )

    def compute(self) -> dict[str, float]:
        s = self._state
        n = int(s["a_images"])
        out: dict[str, float] = {}
        if n == 0:
            out.update(mIoU_a=float("nan"), maxF_a=float("nan"), mIoU_b=float("nan"), maxF_b=float("nan"))
        else:
            p, r = s["a_prec"] / n, s["a_rec"] / n
            f = 2 * p * r / (p + r + 1e-12)
            out["mIoU_a"] = 100.0 * float((s["a_iou"] / n).max())
            out["maxF_a"] = 100.0 * float(f.max())
            tp, pp, gp = (s[k].double() for k in ("b_tp", "b_pred", "b_gt"))
            pb, rb = _safe_div(tp, pp), _safe_div(tp, gp)
            b2 = self.beta_sq_b
            fb = _safe_div((1 + b2) * pb * rb, b2 * pb + rb)
            out["mIoU_b"] = 100.0 * float(_safe_div(tp, pp + gp - tp).max())
            out["maxF_b"] = 100.0 * float(fb.max())
        out["mIoU"] = out[f"mIoU_{self.headline}"]
        out["maxF"] = out[f"maxF_{self.headline}"]
        return out
