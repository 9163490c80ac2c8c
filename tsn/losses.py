"""Per-task training losses, as in the TSN release (which follows ASTMT /
Multi-Task-Learning-PyTorch).

Every loss here is *unweighted*: the per-task weights (``loss.weights`` in the
config; the paper's are in ``configs/*/base.yaml``) or a learned weighting
are applied by :mod:`tsn.weighting`.

Invalid labels never count: 255 for class labels (and for binary maps), a
zero vector for normals, 0 (or a non-finite value) for depth. Each loss is a
mean over the valid pixels of the batch, and a batch with no valid pixel
gives an exact, differentiable zero instead of NaN, so a task that is absent
from some images (e.g. parts on images without persons) is safe to train.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tsn.errors import ConfigError
from tsn.registry import Registry
from tsn.tasks import IGNORE_INDEX, Task, check_tasks, get_task

LOSSES: Registry[Callable[..., Callable[[Tensor, Tensor], Tensor]]] = Registry("loss")


def _check_shapes(pred: Tensor, target: Tensor, task: str) -> None:
    if pred.shape[0] != target.shape[0] or pred.shape[-2:] != target.shape[-2:]:
        raise ValueError(
            f"{task} loss: prediction {tuple(pred.shape)} and label {tuple(target.shape)} "
            "differ in batch or spatial size; upsample the prediction to the label first"
        )


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Sum over ``mask`` divided by its count; exactly 0 (with a graph) if empty."""
    total = torch.where(mask, values, torch.zeros_like(values)).sum()
    return total / mask.sum().clamp(min=1).to(values.dtype)


def _class_labels(target: Tensor) -> Tensor:
    if target.dim() == 4 and target.shape[1] == 1:
        target = target[:, 0]
    return target.long()


class CrossEntropy:
    """Pixel-wise cross-entropy ignoring label 255; mean over valid pixels.

    Same as ``nn.CrossEntropyLoss(ignore_index=255)`` except that an all-ignored
    batch gives 0 instead of NaN.
    """

    def __init__(self, ignore_index: int = IGNORE_INDEX) -> None:
        self.ignore_index = ignore_index

    def __call__(self, pred: Tensor, target: Tensor) -> Tensor:
        target = _class_labels(target)
        _check_shapes(pred, target, "cross-entropy")
        valid = target != self.ignore_index
        ce = F.cross_entropy(pred, target, ignore_index=self.ignore_index, reduction="sum")
        return ce / valid.sum().clamp(min=1).to(ce.dtype)


class BalancedBCE:
    """Class-balanced binary cross-entropy on logits (HED / ASTMT style).

    ``loss = (w * sum_pos + (1 - w) * sum_neg) / n_valid`` where sum_pos and
    sum_neg are the per-pixel BCE terms of the positive and negative pixels.
    ``pos_weight=None`` sets w to the fraction of negatives among the valid
    pixels of the batch (saliency); a number fixes it (edge: 0.95 PASCAL, 0.8
    NYUD). The terms use ``softplus`` so large logits cannot overflow. Labels
    other than 0 or 1 (e.g. 255) or NaN mark pixels without a label.
    """

    def __init__(self, pos_weight: float | None = None) -> None:
        if pos_weight is not None and not 0.0 <= pos_weight <= 1.0:
            raise ConfigError(f"balanced BCE pos_weight must be in [0, 1], got {pos_weight}")
        self.pos_weight = pos_weight

    def __call__(self, pred: Tensor, target: Tensor) -> Tensor:
        if target.dim() == 3:
            target = target.unsqueeze(1)
        _check_shapes(pred, target, "balanced BCE")
        pred = pred.float()  # float32 sums even under autocast
        target = target.to(pred.dtype)
        pos = target == 1
        neg = target == 0
        valid = pos | neg
        n_valid = valid.sum().clamp(min=1).to(pred.dtype)
        if self.pos_weight is None:
            w = neg.sum().to(pred.dtype) / n_valid
        else:
            w = torch.as_tensor(self.pos_weight, dtype=pred.dtype, device=pred.device)
        zero = torch.zeros_like(pred)
        loss_pos = torch.where(pos, F.softplus(-pred), zero).sum()  # -log sigmoid(x)
        loss_neg = torch.where(neg, F.softplus(pred), zero).sum()  # -log(1 - sigmoid(x))
        return (w * loss_pos + (1 - w) * loss_neg) / n_valid


class NormalsL1:
    """L1 between the L2-normalised prediction and the unit label.

    Mean over the components of valid pixels (as the release's
    ``NormalsLoss(normalize=True, norm=1)``, which divides by the number of
    valid elements, i.e. 3 per pixel). A zero label vector marks no label.
    """

    def __call__(self, pred: Tensor, target: Tensor) -> Tensor:
        _check_shapes(pred, target, "normals")
        pred = pred.float()
        target = target.to(pred.dtype)
        valid = (target.abs().sum(dim=1, keepdim=True) > 0) & torch.isfinite(target).all(
            dim=1, keepdim=True
        )
        unit = pred / (pred.norm(p=2, dim=1, keepdim=True) + 1e-12)
        diff = (unit - torch.nan_to_num(target)).abs()
        return _masked_mean(diff, valid.expand_as(diff))


class DepthL1:
    """L1 in metres over valid pixels (label > 0 and finite)."""

    def __call__(self, pred: Tensor, target: Tensor) -> Tensor:
        if target.dim() == 3:
            target = target.unsqueeze(1)
        _check_shapes(pred, target, "depth")
        pred = pred.float()
        target = target.to(pred.dtype)
        valid = torch.isfinite(target) & (target > 0)
        diff = (pred - torch.nan_to_num(target)).abs()
        return _masked_mean(diff, valid)


class VectorL1:
    """L1 over the components of labelled pixels of any vector field or scalar map.

    A pixel is labelled where its label is finite and not all equal to the
    kind's no-label value (0): the generic regression loss of a new task.
    """

    def __call__(self, pred: Tensor, target: Tensor) -> Tensor:
        if target.dim() == 3:
            target = target.unsqueeze(1)
        _check_shapes(pred, target, "L1")
        pred = pred.float()
        target = target.to(pred.dtype)
        valid = (target.abs().sum(dim=1, keepdim=True) > 0) & torch.isfinite(target).all(dim=1, keepdim=True)
        diff = (pred - torch.nan_to_num(target)).abs()
        return _masked_mean(diff, valid.expand_as(diff))


# Builders take the task (for its label kind) and the task's loss options.
@LOSSES.register("cross_entropy")
def _cross_entropy(task) -> CrossEntropy:
    return CrossEntropy(int(task.label.no_label))


@LOSSES.register("balanced_bce")
def _balanced_bce(task, pos_weight: float | None = None) -> BalancedBCE:
    return BalancedBCE(pos_weight)


@LOSSES.register("normals_l1")
def _normals_l1(task) -> NormalsL1:
    return NormalsL1()


@LOSSES.register("depth_l1")
def _depth_l1(task) -> DepthL1:
    return DepthL1()


@LOSSES.register("l1")
def _l1(task) -> VectorL1:
    return VectorL1()


def build_loss(task: str | Task, **opts) -> Callable[[Tensor, Tensor], Tensor]:
    """The unweighted loss of one task, built as the task declares (a name in :data:`LOSSES`
    or a builder); ``opts`` are its ``loss.options.<task>`` (e.g. ``pos_weight`` for edge),
    unknown ones fail."""
    spec = task if isinstance(task, Task) else get_task(task)
    builder = LOSSES.get(spec.loss) if isinstance(spec.loss, str) else spec.loss
    opts = spec.options("loss", opts)
    try:
        return builder(spec, **opts)
    except TypeError as e:
        raise ConfigError(f"bad option for the {spec.name} loss: {e}") from None


class MultiTaskLoss(nn.Module):
    """One loss per task; returns the UNWEIGHTED per-task losses.

    ``options`` maps a task to its loss options (the config's ``loss.options``;
    tasks not listed take their defaults). Only tasks present in ``preds`` are computed. A task whose label is
    missing from ``targets`` gives a zero that is still connected to the
    prediction, so the backward pass and DDP see every parameter.
    """

    def __init__(self, tasks: Iterable[str], options: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        super().__init__()
        self.tasks = check_tasks(list(tasks))
        options = options or {}
        self.losses = {t: build_loss(t, **options.get(t, {})) for t in self.tasks}

    def forward(self, preds: dict[str, Tensor], targets: dict[str, Tensor]) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for task, pred in preds.items():
            if task not in self.losses:
                raise ConfigError(
                    f"prediction for task {task!r}, but the loss was built for {self.tasks}"
                )
            target = targets.get(task)
            if target is None:
                out[task] = pred.sum() * 0.0
            else:
                out[task] = self.losses[task](pred, target)
        return out
