"""Semantic segmentation and human parts: mIoU from a split-wide confusion matrix.

As in ASTMT / Multi-Task-Learning-PyTorch: per-class TP, FP and FN are summed
over every valid pixel (label != 255) of the split, and IoU_c = TP / (TP + FP
+ FN); predictions on ignored pixels never count. For parts, images without
annotated persons are all 255, so they contribute nothing, exactly as the
community scores parts only on images that contain persons.

One difference is configurable (``absent_class``): a class that never occurs
in the labels and is never predicted has IoU 0/0. The community code counts it
as 0 ("zero"); we leave it out of the mean by default ("skip"), so that a
perfect prediction scores 100 on a subset that lacks some classes. On a full
PASCAL / NYUD split every class occurs and both give the same number.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from tsn.errors import ConfigError
from tsn.metrics.base import METRICS, Metric, as_labels, check_same_size
from tsn.tasks import IGNORE_INDEX, get_task


class SegmentationMetric(Metric):
    task = "semseg"

    def __init__(
        self,
        num_classes: int | None = None,
        ignore_index: int = IGNORE_INDEX,
        absent_class: str = "skip",
    ) -> None:
        if absent_class not in ("skip", "zero"):
            raise ConfigError(f"absent_class must be 'skip' or 'zero', got {absent_class!r}")
        self.num_classes = int(num_classes or get_task(self.task).channels)
        self.ignore_index = ignore_index
        self.absent_class = absent_class
        super().__init__()

    def config(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes, "ignore_index": self.ignore_index}

    def _zero_state(self) -> dict[str, Tensor]:
        C = self.num_classes
        return {
            "confusion": torch.zeros(C, C, dtype=torch.int64),  # rows: label, cols: prediction
            "images": torch.zeros((), dtype=torch.int64),  # images with >= 1 valid pixel
        }

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> None:
        """``pred``: logits [B,C,H,W] (argmax taken here) or labels [B,H,W]."""
        C = self.num_classes
        if pred.is_floating_point():
            if pred.dim() != 4 or pred.shape[1] != C:
                raise ValueError(f"{self.task}: expected logits [B,{C},H,W], got {tuple(pred.shape)}")
            pred = pred.argmax(dim=1)
        else:
            pred = as_labels(pred)
        target = as_labels(target).to(pred.device)
        check_same_size(pred, target, self.task)
        valid = target != self.ignore_index
        gt = target[valid]
        pr = pred[valid]
        if gt.numel() and (int(gt.min()) < 0 or int(gt.max()) >= C):
            raise ValueError(f"{self.task}: label values outside [0, {C}) and != {self.ignore_index}")
        if pr.numel() and (int(pr.min()) < 0 or int(pr.max()) >= C):
            raise ValueError(f"{self.task}: predicted classes outside [0, {C})")
        conf = torch.bincount(gt * C + pr, minlength=C * C).view(C, C)
        self._add(confusion=conf, images=valid.flatten(1).any(dim=1).sum())

    def compute(self) -> dict[str, float]:
        conf = self._state["confusion"].double()
        tp = conf.diag()
        fp = conf.sum(0) - tp
        fn = conf.sum(1) - tp
        denom = tp + fp + fn
        iou = tp / denom.clamp(min=1)
        present = denom > 0
        if self.absent_class == "zero":
            miou = iou.mean()
        else:
            miou = iou[present].mean() if present.any() else torch.tensor(float("nan"))
        total = conf.sum()
        out = {
            "mIoU": 100.0 * float(miou),
            "pixAcc": 100.0 * float(tp.sum() / total) if total > 0 else float("nan"),
            "n_images": float(self._state["images"]),
        }
        for c in range(self.num_classes):
            out[f"IoU_{c}"] = 100.0 * float(iou[c]) if present[c] else float("nan")
        return out


@METRICS.register("semseg")
class SemsegMetric(SegmentationMetric):
    task = "semseg"


@METRICS.register("parts")
class PartsMetric(SegmentationMetric):
    """Human parts; images whose label is all 255 (no person) are not scored."""

    task = "parts"
