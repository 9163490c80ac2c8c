"""Ctrl-C and SIGTERM: last.pt at the next step boundary, exit 130, and a bit-identical resume (real signals)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.test_pipeline import ROOT, run_cli, tiny
from tsn.config import load_config
from tsn.engine.hooks import HookBase
from tsn.engine.trainer import Interrupted, Trainer

SECTIONS = dict(data={"options": {"length": {"train": 16, "val": 4, "test": 4}}}, train={"epochs": 2})
TOTAL = 2 * 3 * 4  # epochs x tasks (paper sampling) x batches


@pytest.fixture(autouse=True)
def _one_thread():
    """The CLI runs use OMP_NUM_THREADS=1; the in-process reference must use the same kernels."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class SignalAt(HookBase):
    def __init__(self, step: int, sig: int) -> None:
        self.at, self.sig = step, sig

    def after_step(self, losses, weights) -> None:
        if self.trainer.step == self.at:
            os.kill(os.getpid(), self.sig)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=False)["model"]


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = Trainer(load_config(data=tiny(**SECTIONS)), out, quiet=True).fit()
    finally:
        torch.set_num_threads(n)
    return out, res


@pytest.mark.parametrize("sig,step", [(signal.SIGTERM, 7), (signal.SIGINT, 4)])  # 4: end of a segment
def test_signal_mid_epoch_saves_the_position_and_resume_is_bit_identical(tmp_path, uninterrupted, sig, step):
    cfg = load_config(data=tiny(**SECTIONS))
    before = signal.getsignal(sig)
    with pytest.raises(Interrupted) as e:
        Trainer(cfg, tmp_path, quiet=True, hooks=[SignalAt(step, sig)]).fit()
    assert e.value.signum == sig and e.value.path == tmp_path / "checkpoints" / "last.pt"
    assert signal.getsignal(sig) is before  # the trainer's handler is gone again
    note = json.loads((tmp_path / "checkpoints" / "last.json").read_text())
    assert note["step"] == step and note["epoch"] == 0 and note["segment"] * 4 + note["batch"] == step
    assert "interrupted at epoch 1, step" in (tmp_path / "log.txt").read_text()
    res = Trainer(cfg, tmp_path, resume=True, quiet=True).fit()
    assert res["steps"] == TOTAL
    _assert_same(_weights(uninterrupted[0]), _weights(tmp_path))
    assert res["best_epoch"] == uninterrupted[1]["best_epoch"]


def test_ctrl_c_on_the_command_line_then_resume(tmp_path, uninterrupted):
    """A real SIGINT to `python -m train` with the default config (no checkpoint_every)."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(tiny(**SECTIONS)))
    out = tmp_path / "run"
    env = {**os.environ, "TSN_QUIET": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "train", str(cfg), "--out", str(out)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:  # the start line is logged once the handlers are in place
        if (out / "log.txt").is_file() and "parameters" in (out / "log.txt").read_text():
            proc.send_signal(signal.SIGINT)
            break
        time.sleep(0.01)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == f"interrupted; resume with --resume --out {out}"
    assert json.loads((out / "checkpoints" / "last.json").read_text())["step"] < TOTAL
    r = run_cli("-m", "train", "--resume", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "metrics.json").read_text())["steps"] == TOTAL
    _assert_same(_weights(uninterrupted[0]), _weights(out))
