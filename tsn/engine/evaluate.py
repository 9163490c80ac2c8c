"""Evaluation loop: all tasks per batch (stacked decoding), streaming
metrics reduced across processes, optional per-batch callback (prediction
images) and per-image callback (predictions at the original size).

Metrics see every image on its real pixels at its real size: where the
evaluation transform padded or resized the image (``meta["valid"]``,
``meta["geometry"]``), each prediction is brought back to the original
image by :func:`tsn.engine.geometry.restore` and scored one image at a time
(the metric states are additive, so this equals one batched update).
Losses are still computed on the network-size batch."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from tsn.engine.geometry import needs_restore, restore
from tsn.metrics import MultiTaskMetrics


def to_device(batch: dict, device: torch.device, channels_last: bool = False) -> dict:
    out = {}
    for k, v in batch.items():
        if isinstance(v, Tensor):
            v = v.to(device, non_blocking=True)
            if channels_last and k == "image":
                v = v.contiguous(memory_format=torch.channels_last)
        out[k] = v
    return out


def autocast(device: torch.device, enabled: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if enabled else nullcontext()


@dataclass
class EvalResult:
    metrics: dict[str, dict[str, float]]
    losses: dict[str, float] = field(default_factory=dict)

    @property
    def mean_loss(self) -> float:
        return sum(self.losses.values()) / max(1, len(self.losses))


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader,
    tasks: list[str],
    metrics: MultiTaskMetrics,
    device: torch.device,
    criterion: nn.Module | None = None,
    amp: bool = False,
    channels_last: bool = False,
    progress: bool = False,
    on_batch: Callable[[dict, dict[str, Tensor]], None] | None = None,
    on_image: Callable[[dict, dict[str, Tensor]], None] | None = None,
    say: Callable[[str], None] | None = None,
) -> EvalResult:
    """``on_image(meta, preds)`` gets each image's network-size predictions
    ([C,h,w] per task) with its ``meta``, e.g. to export them at the original size.
    ``say``: where no bar is drawn, one-line progress records go there
    (:class:`~tsn.engine.progress.ProgressRecords`)."""
    from tqdm import tqdm

    from tsn.engine.progress import ProgressRecords

    was_training = model.training
    model.eval()
    metrics.reset()
    loss_sum = {t: torch.zeros((), dtype=torch.float64) for t in tasks}
    n = torch.zeros((), dtype=torch.float64)
    records = ProgressRecords("eval", len(loader), say) if say is not None and not progress else None
    for step, batch in enumerate(tqdm(loader, desc="eval", leave=False, disable=not progress, dynamic_ncols=True), 1):
        batch = to_device(batch, device, channels_last)
        with autocast(device, amp):
            preds = model(batch["image"], tasks=tasks)
        preds = {t: p.float() for t, p in preds.items()}
        score(metrics, preds, batch)
        if on_image is not None:
            for i, meta in enumerate(batch["meta"]):
                on_image(meta, {t: p[i] for t, p in preds.items()})
        if criterion is not None:
            bs = batch["image"].shape[0]
            for t, v in criterion(preds, {t: batch[t] for t in tasks if t in batch}).items():
                loss_sum[t] += float(v) * bs
            n += bs
        if on_batch is not None:
            on_batch(batch, preds)
        if records is not None:
            records.update(step, batch["image"].shape[0])
    metrics.all_reduce()
    losses = {}
    if criterion is not None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            vec = torch.stack([*loss_sum.values(), n]).to(device)
            torch.distributed.all_reduce(vec)
            vec = vec.cpu()
            loss_sum = dict(zip(loss_sum, vec[:-1]))
            n = vec[-1]
        losses = {t: float(v / n.clamp_min(1)) for t, v in loss_sum.items()}
    model.train(was_training)
    return EvalResult(metrics.compute(), losses)


def score(metrics: MultiTaskMetrics, preds: dict[str, Tensor], batch: dict) -> None:
    """Update ``metrics`` with one batch, each image at its original size."""
    metas = batch.get("meta") or []
    if not any(needs_restore(m) for m in metas):
        metrics.update(preds, batch)
        return
    for i, meta in enumerate(metas):
        p_i, t_i = {}, {}
        for t, p in preds.items():
            if t not in batch:
                continue
            p_r, t_r = restore(t, p[i], batch[t][i], meta)
            p_i[t] = p_r.unsqueeze(0).cpu()
            t_i[t] = t_r.unsqueeze(0).cpu()
        metrics.update(p_i, t_i)
