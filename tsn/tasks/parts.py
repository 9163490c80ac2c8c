"""Human parts: class ids (255 off persons), cross-entropy, mIoU as semseg."""

from tsn.tasks.base import IGNORE_INDEX, ClassMap, Task, register_task
from tsn.tasks.semseg import class_metric_args

PARTS = register_task(Task(
    name="parts",
    channels=7,
    label=ClassMap(),
    loss="cross_entropy",
    metric="parts",
    metric_options={"absent_class": "skip"},
    metric_args=lambda opts, info, validation: class_metric_args(opts, info, validation, "parts"),
    headline="mIoU",
    directions={"mIoU": True, "pixAcc": True, "IoU_*": True},
    shown=("mIoU",),
    description=f"human parts, long [H,W], {IGNORE_INDEX} ignore",
))
