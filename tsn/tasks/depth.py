"""Depth in metres: L1 on valid pixels, RMSE; zooming in by s brings the scene s times closer (depth / s)."""

from tsn.tasks.base import ScalarMap, Task, register_task

DEPTH = register_task(Task(
    name="depth",
    channels=1,
    label=ScalarMap(),
    loss="depth_l1",
    metric="depth",
    headline="rmse",
    directions={"rmse": False, "log_rmse": False, "abs_rel": False, "clamped": False},
    shown=("rmse", "log_rmse", "abs_rel"),
    zoom_power=-1.0,
    description="depth in metres, float [1,H,W], 0 = invalid",
))
