"""Saliency: a {0,1} map, BCE balanced per batch, mIoU / maxF in both community conventions."""

from tsn.tasks.base import BinaryMap, Task, register_task

SAL = register_task(Task(
    name="sal",
    channels=1,
    label=BinaryMap(),
    loss="balanced_bce",  # no fixed pos_weight: the batch's share of negatives
    metric="sal",
    metric_options={"headline": "a"},  # which convention the plain mIoU / maxF keys copy (a: what TSN reports)
    metric_args=lambda opts, info, validation: {"sal_headline": opts["headline"]},
    headline="mIoU",
    directions={"mIoU": True, "maxF": True, "mIoU_a": True, "maxF_a": True, "mIoU_b": True, "maxF_b": True},
    shown=("mIoU", "maxF", "maxF_b"),
    description="saliency, float {0,1} [1,H,W]",
))
