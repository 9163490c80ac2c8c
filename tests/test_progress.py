"""Progress records where no terminal shows a bar (nohup, schedulers, CI)."""

import pytest

from tsn.engine.progress import ProgressRecords, record_interval
from tsn.errors import ConfigError


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_records_at_a_steady_interval_with_rate_and_eta():
    clock, lines = Clock(), []
    p = ProgressRecords("train", total=1000, say=lines.append, done=200, every=60, clock=clock)
    for step in range(201, 261):  # 60 steps of 16 images, one a second
        clock.t += 1.0
        p.update(step, 16)
    assert lines == ["train: 260/1000 steps (26.0%), 16.0 images/s, elapsed 1m00s, ETA 12m20s"]
    clock.t += 30.0
    p.update(261, 16)
    assert len(lines) == 1  # not yet another interval


def test_interval_from_the_environment(monkeypatch):
    monkeypatch.delenv("TSN_PROGRESS_EVERY", raising=False)
    assert record_interval() == 60.0
    monkeypatch.setenv("TSN_PROGRESS_EVERY", "0")
    assert record_interval() == 0.0
    for bad in ("soon", "-1", "nan"):
        monkeypatch.setenv("TSN_PROGRESS_EVERY", bad)
        with pytest.raises(ConfigError, match="TSN_PROGRESS_EVERY"):
            record_interval()


def test_a_run_without_a_terminal_logs_progress_records(tmp_path, monkeypatch):
    """Under pytest stderr is captured (no terminal), as under nohup: log.txt gets the records."""
    from train.__main__ import main

    monkeypatch.setenv("TSN_PROGRESS_EVERY", "0")
    out = tmp_path / "run"
    rc = main(["configs/synthetic/tsn.yaml", "--out", str(out), "--set", "data.options.length={train: 16, val: 8, test: 8}",
               "--set", "train.epochs=1", "--set", "train.batch_size=8", "--set", "data.tasks=[edge, semseg]",
               "--set", "train.eval_at_start=false"])
    assert rc == 0
    log = (out / "log.txt").read_text()
    assert "train: 1/" in log and "images/s" in log and "ETA" in log
    assert "eval: 1/" in log
