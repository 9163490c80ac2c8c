"""Checkpoints: written atomically, checked against the model on load.

A checkpoint holds everything to continue bit-for-bit on CPU: model,
optimizer, scheduler and weighting state, RNG states, the position in the
epoch, and the resolved config (so ``python -m eval CHECKPOINT`` needs
nothing else).
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tsn.errors import CheckpointError
from tsn.io import atomic_torch_save, read_torch


def fingerprint(model: nn.Module) -> str:
    """Hash of the model's parameter and buffer names and shapes."""
    h = hashlib.sha1()
    for k, v in model.state_dict().items():
        h.update(f"{k}:{tuple(v.shape)};".encode())
    return h.hexdigest()[:16]


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, model: nn.Module, **extra: Any) -> Path:
    return atomic_torch_save(path, {"model": model.state_dict(), "fingerprint": fingerprint(model), **extra})


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        for cand in (p / "checkpoints" / "best.pt", p / "checkpoints" / "last.pt", p / "best.pt", p / "last.pt"):
            if cand.is_file():
                p = cand
                break
        else:
            raise CheckpointError(f"no checkpoint in {path} (expected checkpoints/best.pt or checkpoints/last.pt)")
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    ckpt = read_torch(p, CheckpointError, "checkpoint")
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"{p} is not a checkpoint of this project (no 'model' entry)")
    ckpt["path"] = str(p)
    return ckpt


def load_model_state(model: nn.Module, ckpt: dict[str, Any]) -> None:
    """Load weights, refusing a checkpoint of a different architecture."""
    fp = fingerprint(model)
    # The fingerprint hashes names in state_dict order, where parameters come before buffers: a
    # tensor that was a parameter when saved (a code learned by train.add_task) and is a buffer in
    # the model built from the config changes the hash but not the architecture, so same names and
    # shapes also pass.
    same_shapes = isinstance(ckpt.get("model"), dict) and {
        k: tuple(v.shape) for k, v in ckpt["model"].items()} == {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if ckpt.get("fingerprint") not in (None, fp) and not same_shapes:
        theirs = ckpt.get("config", {}).get("model", {}).get("name", "?")
        raise CheckpointError(
            f"checkpoint {ckpt.get('path', '')} was saved from a different model ({theirs}, tasks "
            f"{ckpt.get('tasks', '?')}) than the one built here; check the config"
        )
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise CheckpointError(f"checkpoint {ckpt.get('path', '')} does not fit the model: {str(e).splitlines()[0]}") from None
