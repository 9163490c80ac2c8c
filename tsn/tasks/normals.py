"""Surface normals: unit vectors (x right, so a mirror negates x), L1 on normalised outputs, angular error."""

from tsn.tasks.base import Task, VectorField, register_task

NORMALS = register_task(Task(
    name="normals",
    channels=3,
    label=VectorField(negate_on_hflip=(0,), unit=True),
    loss="normals_l1",
    metric="normals",
    headline="mean",
    directions={"mean": False, "median": False, "rmse": False, "11.25": True, "22.5": True, "30": True},
    shown=("mean", "median", "rmse", "11.25", "22.5", "30"),
    description="surface normals, unit float [3,H,W], zero = invalid",
))
