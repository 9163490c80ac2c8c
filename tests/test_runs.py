"""tsn.load_run: a run directory or checkpoint file -> (model, config), with one-line errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml
from test_pipeline import tiny

import tsn
from tsn.config import load_config
from tsn.engine.trainer import Trainer
from tsn.errors import CheckpointError, TSNError


def make_run(out: Path, **sections) -> Path:
    """A trained tiny TSN run directory (one epoch on 8 synthetic renders)."""
    Trainer(load_config(data=tiny(**sections)), out, quiet=True).fit()
    return out


def _out(model, seed=1):
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model(x)


def test_run_dir_loads_best_checkpoint_in_eval_mode(run_dir):
    model, cfg = tsn.load_run(run_dir)
    assert not model.training and next(model.parameters()).device.type == "cpu"
    assert cfg.model.name == "tsn" and list(cfg.data.tasks) == ["edge", "semseg", "normals"]
    assert model.task_channels == {"edge": 1, "semseg": 10, "normals": 3}  # the checkpoint's channels
    best = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=False)["model"]
    for k, v in model.state_dict().items():
        assert torch.equal(v, best[k]), k


def test_checkpoint_file_and_run_dir_give_the_same_model(run_dir):
    a, _ = tsn.load_run(run_dir)
    b, cfg = tsn.load_run(run_dir / "checkpoints" / "best.pt")
    for t, v in _out(a).items():
        assert torch.equal(v, _out(b)[t])
    assert cfg.model.encoder_width == 8


def test_falls_back_to_last_checkpoint(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "checkpoints" / "best.pt").unlink()
    model, _ = tsn.load_run(run)
    last = torch.load(run / "checkpoints" / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(v, last[k]) for k, v in model.state_dict().items())


def test_overrides_edit_the_returned_config(run_dir):
    _, cfg = tsn.load_run(run_dir, overrides=["data.root=/somewhere", "eval.batch_size=2"])
    assert cfg.data.root == "/somewhere" and cfg.eval.batch_size == 2


def _one_line(err: TSNError) -> str:
    msg = str(err)
    assert "\n" not in msg
    return msg


def test_missing_checkpoint_is_one_line(tmp_path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(tiny()))
    with pytest.raises(CheckpointError) as e:
        tsn.load_run(tmp_path)
    assert "no checkpoint in" in _one_line(e.value)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        tsn.load_run(tmp_path / "nope.pt")


def test_corrupt_checkpoint_is_one_line(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"\x80\x04 not a checkpoint")
    with pytest.raises(CheckpointError) as e:
        tsn.load_run(tmp_path / "junk.pt")
    assert "cannot read checkpoint" in _one_line(e.value)
    torch.save({"weights": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a checkpoint of this project"):
        tsn.load_run(tmp_path / "other.pt")


def test_config_yaml_that_does_not_match_the_checkpoint_is_refused(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    data = yaml.safe_load((run / "config.yaml").read_text())
    data["model"]["encoder_width"] = 16
    (run / "config.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(CheckpointError) as e:
        tsn.load_run(run)
    assert "model.encoder_width: 8 vs 16" in _one_line(e.value)
    tsn.load_run(run / "checkpoints" / "best.pt")  # the file alone still loads, with its own config


def test_checkpoint_without_config_uses_the_config_beside_it(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    ckpt = torch.load(run / "checkpoints" / "best.pt", weights_only=False)
    del ckpt["config"]
    torch.save(ckpt, run / "checkpoints" / "best.pt")
    model, cfg = tsn.load_run(run / "checkpoints" / "best.pt")
    assert cfg.model.encoder_width == 8
    (run / "config.yaml").unlink()
    with pytest.raises(CheckpointError, match="holds no config"):
        tsn.load_run(run / "checkpoints" / "best.pt")


def test_checkpoint_of_another_architecture_is_refused(run_dir, tmp_path):
    ckpt = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=False)
    ckpt["config"]["model"]["up_widths"] = [16, 16, 8, 8, 4]
    torch.save(ckpt, tmp_path / "x.pt")
    with pytest.raises(CheckpointError) as e:
        tsn.load_run(tmp_path / "x.pt")
    assert "different model" in _one_line(e.value)


def test_unavailable_device_is_one_line(run_dir):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(TSNError, match="no CUDA device"):
        tsn.load_run(run_dir, device="cuda")
