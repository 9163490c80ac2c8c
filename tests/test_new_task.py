"""A new dense task from this file alone plus one dataset hook: trained, evaluated, tabulated.

"flow" is the 2-channel image motion (pixels) of a camera sliding sideways, a
vector field whose u component points along x (so a mirror negates it) and
whose size grows with a zoom. The task (label kind, loss, metric, directions)
is declared here; the dataset hook is one entry of ``SYNTHETIC_LABELS``.
Nothing else in the library learns its name.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from eval.__main__ import main as eval_main
from tsn.config import load_config
from tsn.data import build_dataset, dataset_info
from tsn.data import transforms as T
from tsn.data.synthetic import SYNTHETIC_LABELS
from tsn.engine.trainer import Trainer
from tsn.metrics import Metric
from tsn.tasks import TASKS, Task, VectorField, temporary_task


class EndPointError(Metric):
    """Mean end-point error (px) over every labelled pixel of the split (zero vector = no label)."""

    task = "flow"

    def _zero_state(self):
        return {"sum": torch.zeros((), dtype=torch.float64), "count": torch.zeros((), dtype=torch.int64)}

    def update(self, pred, target):
        valid = target.abs().sum(dim=1) > 0
        err = (pred.float() - target.float()).norm(dim=1)[valid]
        self._add(sum=err.double().sum(), count=torch.tensor(err.numel()))

    def compute(self):
        n = int(self._state["count"])
        return {"epe": float(self._state["sum"]) / n if n else float("nan")}


FLOW = Task(
    name="flow", channels=2, label=VectorField(negate_on_hflip=(0,)), loss="l1", metric=EndPointError,
    headline="epe", directions={"epe": False}, zoom_power=1.0,
    description="image motion (px) of a camera sliding 2% of a metre right and 1% down, float [2,H,W]",
)


def flow_label(scene: dict) -> np.ndarray:
    """Motion = focal * baseline / depth with focal = image width; zero (no label) on the sky."""
    d = scene["depth"].astype(np.float32).reshape(scene["depth"].shape[-2:])
    inv = np.where(d > 0, 1.0 / np.maximum(d, 1e-6), 0.0) * d.shape[-1]
    return np.stack([-0.02 * inv, 0.01 * inv]).astype(np.float32)


@pytest.fixture
def flow(monkeypatch):
    monkeypatch.setitem(SYNTHETIC_LABELS, "flow", flow_label)  # the one dataset hook
    with temporary_task(FLOW):
        yield FLOW
    assert "flow" not in TASKS


def test_the_hook_makes_a_dataset_task(flow):
    assert dataset_info("synthetic").tasks[-1] == "flow"
    s = build_dataset("synthetic", split="val", tasks=["flow", "depth"], size=24, length=1).load(0)
    assert s["flow"].shape == (2, 24, 24) and s["flow"].dtype == torch.float32
    sky = s["depth"][0] == 0
    assert (s["flow"][:, sky] == 0).all() and (s["flow"][0, ~sky] < 0).all()
    f = T.hflip(s)  # the kind's flip rule reaches the new task
    assert torch.equal(f["flow"][0], -s["flow"][0].flip(-1)) and torch.equal(f["flow"][1], s["flow"][1].flip(-1))
    z = T.resize(s, (48, 48), depth_scale=2.0)  # zoom_power 1: twice as close, twice the motion
    assert torch.equal(z["flow"][:, ::2, ::2], s["flow"] * 2.0)


def test_train_evaluate_tabulate_a_new_task(flow, tmp_path):
    run = tmp_path / "runs" / "flow_tsn"
    cfg = load_config(data={
        "name": "flow_tsn",
        "data": {"name": "synthetic", "tasks": ["semseg", "flow"], "size": 32,
                 "options": {"length": {"train": 8, "val": 4, "test": 4}}},
        "model": {"encoder_width": 8, "skip_widths": [8, 8, 8, 16, 16], "up_widths": [16, 16, 8, 8, 8],
                  "code": {"dim": 12}, "embedding": {"n_fc": 2}},
        "optim": {"lr": 1e-3, "schedule": "none"},
        "train": {"epochs": 1, "batch_size": 4, "images_every_val": 1},  # draws the new task too
        "eval": {"batch_size": 4},
    })
    res = Trainer(cfg, run, quiet=True).fit()
    assert set(res["val"]) == {"semseg", "flow"} and res["steps"] == 2 * 2
    assert math.isfinite(res["val"]["flow"]["epe"]) and res["val"]["flow"]["epe"] > 0

    assert eval_main(["run", str(run), "--split", "test", "--save-predictions", str(tmp_path / "pred"),
                      "--export", str(tmp_path / "export")]) == 0
    # exported in its label kind's format, one file per test image, without the library naming the task
    assert len(list((tmp_path / "export" / "flow").glob("*.png"))) == 4
    (record,) = (run / "evals").glob("test-*.json")  # evaluations go beside the training record
    test = json.loads(record.read_text())["results"]
    assert math.isfinite(test["flow"]["epe"]) and list((tmp_path / "pred").glob("*.png"))

    assert eval_main(["tables", str(tmp_path / "runs")]) == 0
    md = (tmp_path / "runs" / "tables.md").read_text()
    assert "flow epe ↓" in md and f"{res['val']['flow']['epe']:.2f}" in md
