"""``load_run``: a trained network and its config from a run directory or a
checkpoint file, for notebooks, ``eval predict`` and ``eval export``.

A run directory holds ``config.yaml`` and ``checkpoints/{best,last}.pt``
(best first: it is the one model selection chose). Every checkpoint written
by ``python -m train`` also holds its resolved config and task channels, so
a checkpoint file alone is enough. When a run directory's ``config.yaml`` is
there, it is the config returned (a user may have edited ``data.root``), but
its ``model`` section must equal the checkpoint's: the weights were trained
for that architecture, and a silent mismatch would load into another one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from tsn.engine.factory import resolve_device
from tsn.errors import CheckpointError, ConfigError


def run_dir(checkpoint: Path) -> Path:
    """The run directory a checkpoint file belongs to (``RUN/checkpoints/x.pt`` or ``RUN/x.pt``)."""
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


def _diff(a: Any, b: Any, prefix: str) -> str | None:
    """The first key where two nested dicts differ, as ``key: a vs b``."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            d = _diff(a.get(k), b.get(k), f"{prefix}.{k}")
            if d:
                return d
        return None
    return None if a == b else f"{prefix}: {a!r} vs {b!r}"


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read {path}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} does not hold a config (a YAML mapping)")
    return data


def load_run_checkpoint(path: str | Path, device: str | torch.device = "cpu", overrides: list[str] | None = None):
    """``(config, model, checkpoint)``: :func:`load_run` plus the checkpoint dict
    (its ``path``, ``epoch``, ...), for commands that report where weights came from."""
    from tsn.config import load_config
    from tsn.data.base import parse_size
    from tsn.engine.checkpoint import load_checkpoint, load_model_state
    from tsn.models import build_model
    from tsn.models.registry import task_channels_for

    ckpt = load_checkpoint(path)
    ckpt_path = Path(ckpt["path"])
    yaml_path = run_dir(ckpt_path) / "config.yaml"
    saved = ckpt.get("config")
    if Path(path).is_dir() and yaml_path.is_file():
        data = _read_yaml(yaml_path)
        if saved is not None:
            d = _diff(saved.get("model"), data.get("model"), "model")
            if d:
                raise CheckpointError(f"{yaml_path} does not match the checkpoint {ckpt_path.name} ({d}); "
                                      "restore config.yaml's model section or load the checkpoint file itself")
    elif saved is not None:
        data = saved
    elif yaml_path.is_file():
        data = _read_yaml(yaml_path)
    else:
        raise CheckpointError(f"{ckpt_path} holds no config and no config.yaml is beside it; it was not written by python -m train")
    cfg = load_config(data=data, overrides=list(overrides or []))
    cfg.model.pretrained = False  # the checkpoint holds the weights
    tasks = ckpt.get("tasks") or task_channels_for(list(cfg.data.tasks), cfg.data.name)
    model = build_model(cfg.model, dict(tasks))
    load_model_state(model, ckpt)
    # what tsn.predict needs to feed it as it was evaluated (plain attributes, not weights)
    model.input_size = parse_size(cfg.data.size)
    geometry = getattr(cfg.eval, "geometry", None) or cfg.data.options.get("eval_resize", "pad")
    model.input_geometry = "resize" if geometry == "release" else geometry
    dev = resolve_device(device, "device", types=("cpu", "cuda", "mps"))  # inference also runs on mps
    if dev.type == "cpu":
        from tsn.runtime import tune_cpu_allocator

        tune_cpu_allocator()
    return cfg, model.to(dev).eval(), ckpt


def load_run(path: str | Path, device: str | torch.device = "cpu", overrides: list[str] | None = None):
    """``(model, config)`` from a run directory or checkpoint file: the model
    in eval mode on ``device`` with the checkpoint's weights (``best.pt``,
    else ``last.pt``). ``overrides`` are ``KEY=VALUE`` config edits
    (e.g. ``data.root=...``). Errors are one-line :class:`TSNError`."""
    cfg, model, _ = load_run_checkpoint(path, device, overrides)
    return model, cfg


__all__ = ["load_run", "load_run_checkpoint", "resolve_device", "run_dir"]
