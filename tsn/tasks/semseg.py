"""Semantic segmentation: class ids, cross-entropy, mIoU over a split-wide confusion matrix."""

from tsn.tasks.base import IGNORE_INDEX, ClassMap, Task, register_task


def class_metric_args(opts: dict, info, validation: bool, task: str = "semseg") -> dict:
    """The dataset's class count (NYUD semseg has 40, PASCAL 21) reaches the metric."""
    n = (getattr(info, "num_classes", None) or {}).get(task)
    return {**opts, **({"num_classes": n} if n is not None else {})}


SEMSEG = register_task(Task(
    name="semseg",
    channels=21,
    label=ClassMap(),
    loss="cross_entropy",
    metric="semseg",
    metric_options={"absent_class": "skip"},
    metric_args=class_metric_args,
    headline="mIoU",
    directions={"mIoU": True, "pixAcc": True, "IoU_*": True},
    shown=("mIoU", "pixAcc"),
    description=f"semantic segmentation, long [H,W], {IGNORE_INDEX} ignore",
))
