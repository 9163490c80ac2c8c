"""Boundary detection: a {0,1} map, class-balanced BCE, the BSDS benchmark (ODS F)."""

from tsn.tasks.base import BinaryMap, Task, register_task


def _metric_args(opts: dict, info, validation: bool) -> dict:
    """BSDS matching tolerance: the config's, else the dataset's; validation uses fewer thresholds."""
    out = {"thresholds": opts["val_thresholds"] if validation else opts["thresholds"], "workers": opts["workers"]}
    max_dist = opts["max_dist"] if opts["max_dist"] is not None else getattr(info, "edge_max_dist", None)
    if max_dist is not None:
        out["edge_max_dist"] = max_dist
    return out


EDGE = register_task(Task(
    name="edge",
    channels=1,
    label=BinaryMap(),
    loss="balanced_bce",
    loss_options={"pos_weight": 0.95},  # the release: 0.95 PASCAL, 0.8 NYUD
    metric="edge",
    metric_options={"thresholds": 99, "val_thresholds": 9, "max_dist": None, "workers": 0},
    metric_args=_metric_args,
    headline="odsF",
    directions={"odsF": True, "oisF": True, "AP": True, "odsP": True, "odsR": True},
    shown=("odsF", "oisF", "AP"),
    description="boundary detection, float {0,1} [1,H,W]",
))
