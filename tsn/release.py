"""The authors' released PASCAL-Context checkpoints as runs of this project.

The TSN release (GuoleiSun/TSNs) saves ``{"model_state": state_dict, ...}``
of ``ResNetUNet2_2`` (TSN) or ``ResNetUNet2_2_no_adain`` (single-task); the
layout is in RELEASE_CHECKPOINTS.md. :func:`convert_state` maps every key to
this project's ``tsn`` / ``single_task`` model and checks every shape; a key
that does not fit (unknown, missing, wrong shape) is one
:class:`ReleaseError` line naming it. The only weights dropped:

- each decoder block's ``conv1.bias``: the convolution is directly followed
  by an instance norm, which subtracts every channel's mean over the image,
  so a per-channel constant added before it has no effect on the output
  (this project's decoder convolutions have no bias; tested);
- ``base_model.*``, if present: torchvision's ResNet kept whole beside its
  children; accepted only where it equals the ``layerN`` copy the forward
  uses (its ``fc`` is never used).

The release's task codes are 20-ones blocks in the order of its ``test.py``
(semseg, parts, edge, normals, saliency): the converted TSN lists its tasks
in that order, so this project's orthogonal codes are the release's.
:func:`import_release` writes a run directory (``config.yaml``,
``checkpoints/best.pt``, ``release_import.json``) that ``python -m eval``
evaluates, by default with the release's test geometry.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tsn.errors import CheckpointError, ConfigError
from tsn.io import read_torch

#: the release's code blocks: block i of the d = 100 code belongs to this task
RELEASE_TASK_ORDER = ("semseg", "parts", "edge", "normals", "sal")
TASK_ALIASES = {"seg": "semseg", "semseg": "semseg", "parts": "parts", "human_parts": "parts", "edge": "edge",
                "edges": "edge", "normals": "normals", "sal": "sal", "saliency": "sal"}
KINDS = ("tsn", "single_task")

#: release decoder block -> this project's decoder module
BLOCKS = {
    "layer0_1x1": "skips.0", "layer1_1x1": "skips.1", "layer2_1x1": "skips.2", "layer3_1x1": "skips.3",
    "layer4_1x1": "skips.4", "conv_up3": "ups.0", "conv_up2": "ups.1", "conv_up1": "ups.2", "conv_up0": "ups.3",
    "conv_original_size2": "final",
}
#: release encoder prefixes -> torchvision ResNet names
ENCODER = (("layer0.0.", "conv1."), ("layer0.1.", "bn1."), ("layer1.1.", "layer1."), ("layer2.", "layer2."),
           ("layer3.", "layer3."), ("layer4.", "layer4."))
_EMBED = re.compile(r"fcs\.mapping\.(\d+)\.linear\.(weight_orig|bias)")
_BASE_MODEL = (("base_model.conv1.", "layer0.0."), ("base_model.bn1.", "layer0.1."), ("base_model.layer1.", "layer1.1."),
               ("base_model.layer2.", "layer2."), ("base_model.layer3.", "layer3."), ("base_model.layer4.", "layer4."))


class ReleaseError(CheckpointError):
    """A release checkpoint that does not fit the release's layout."""


def canonical_task(name: str) -> str:
    try:
        return TASK_ALIASES[name]
    except KeyError:
        raise ConfigError(f"--task: unknown release task {name!r}; valid: {', '.join(sorted(TASK_ALIASES))}") from None


def read_release_checkpoint(path: str | Path) -> dict[str, Tensor]:
    """The ``model_state`` of a release checkpoint (a leading ``module.`` of
    DataParallel is removed)."""
    p = Path(path)
    if not p.is_file():
        raise ReleaseError(f"release checkpoint not found: {path}")
    obj = read_torch(p, ReleaseError, "release checkpoint")
    if not isinstance(obj, dict) or "model_state" not in obj:
        keys = ", ".join(list(obj)[:5]) if isinstance(obj, dict) else type(obj).__name__
        raise ReleaseError(f"{p} is not a release checkpoint: no 'model_state' entry (found {keys})")
    state = obj["model_state"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ReleaseError(f"{p}: 'model_state' is not a state dict of tensors")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def _encoder_key(key: str) -> str | None:
    for src, dst in ENCODER:
        if key.startswith(src):
            return dst + key[len(src):]
    return None


def _block_key(key: str, kind: str) -> tuple[str | None, bool]:
    """(project decoder key, dropped) for a release decoder key; (None, False) if not one."""
    prefix, _, rest = key.partition(".")
    if prefix == "conv_last" and rest in ("0.weight", "0.bias"):
        return "out_conv." + rest[2:], False
    if prefix not in BLOCKS:
        return None, False
    mod = BLOCKS[prefix]
    if rest == "conv1.weight":
        return f"{mod}.conv.weight", False
    if rest == "conv1.bias":
        return f"{mod}.conv.bias", True
    if kind == "tsn" and rest in ("style1.transform.linear.weight_orig", "style1.transform.linear.bias"):
        return f"{mod}.norm.affine.{'weight' if rest.endswith('orig') else 'bias'}", False
    if kind == "single_task" and rest in ("bn1.weight", "bn1.bias"):
        return f"{mod}.norm.norm.{rest[4:]}", False
    return None, False


def _check_base_model(state: dict[str, Tensor]) -> list[str]:
    """Drop ``base_model.*`` where it duplicates the forward's ``layerN`` weights."""
    dropped = []
    for key in [k for k in state if k.startswith("base_model.")]:
        if key.startswith("base_model.fc."):
            dropped.append(key)
            continue
        twin = next((dst + key[len(src):] for src, dst in _BASE_MODEL if key.startswith(src)), None)
        if twin is None or twin not in state or state[twin].shape != state[key].shape or not torch.equal(state[twin], state[key]):
            raise ReleaseError(f"release key {key} does not duplicate the encoder weights the forward uses ({twin}); "
                               "cannot tell which one the model ran with")
        dropped.append(key)
    return dropped


def convert_state(state: dict[str, Tensor], kind: str, task: str | None = None) -> tuple[dict[str, Tensor], list[str]]:
    """Release state dict -> (this project's keys -> tensors, dropped release keys).

    TSN keys land under ``encoder.``, ``embedding.net.`` and ``decoder.``; a
    single-task network of ``task`` under ``encoders.<task>.`` and
    ``decoders.<task>.``. Shapes are checked by :func:`import_release`
    against the model the config builds."""
    if kind not in KINDS:
        raise ConfigError(f"--kind: {kind!r} is not valid; valid: {', '.join(KINDS)}")
    if kind == "single_task" and task is None:
        raise ConfigError("--kind single_task needs --task (the network's task)")
    enc = "encoder." if kind == "tsn" else f"encoders.{task}."
    dec = "decoder." if kind == "tsn" else f"decoders.{task}."
    dropped = _check_base_model(state)
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.startswith("base_model."):
            continue
        k = _encoder_key(key)
        if k is not None:
            out[enc + k] = value
            continue
        if kind == "tsn":
            m = _EMBED.fullmatch(key)
            if m:
                out[f"embedding.net.{m.group(1)}.{'weight' if m.group(2) == 'weight_orig' else 'bias'}"] = value
                continue
        k, drop = _block_key(key, kind)
        if k is None:
            hint = " (a TSN checkpoint? use --kind tsn)" if kind == "single_task" and ("style1" in key or key.startswith("fcs.")) else ""
            raise ReleaseError(f"release key {key} is not part of the release's {kind} layout{hint}")
        if drop:
            dropped.append(key)
        else:
            out[dec + k] = value
    return out, dropped


def release_key(project_key: str, kind: str, task: str | None = None) -> str:
    """The release key a project key comes from (for messages and round trips)."""
    enc = "encoder." if kind == "tsn" else f"encoders.{task}."
    dec = "decoder." if kind == "tsn" else f"decoders.{task}."
    if project_key.startswith(enc):
        k = project_key[len(enc):]
        for src, dst in ENCODER:
            if k.startswith(dst):
                return src + k[len(dst):]
    m = re.fullmatch(r"embedding\.net\.(\d+)\.(weight|bias)", project_key)
    if m:
        return f"fcs.mapping.{m.group(1)}.linear.{'weight_orig' if m.group(2) == 'weight' else 'bias'}"
    if project_key.startswith(dec):
        k = project_key[len(dec):]
        if k.startswith("out_conv."):
            return "conv_last.0." + k[len("out_conv."):]
        for rel, mod in BLOCKS.items():
            if k.startswith(mod + "."):
                rest = k[len(mod) + 1:]
                return rel + "." + {"conv.weight": "conv1.weight", "norm.affine.weight": "style1.transform.linear.weight_orig",
                                    "norm.affine.bias": "style1.transform.linear.bias", "norm.norm.weight": "bn1.weight",
                                    "norm.norm.bias": "bn1.bias"}.get(rest, rest)
    return project_key


def to_release_state(state: dict[str, Tensor], kind: str, task: str | None = None) -> dict[str, Tensor]:
    """A converted model's state back in the release's layout (conv biases as
    zeros, the project's task codes left out): the inverse of :func:`convert_state`."""
    out = {}
    for k, v in state.items():
        if k.startswith("codes."):
            continue
        out[release_key(k, kind, task)] = v
    for rel, _ in BLOCKS.items():
        w = out[f"{rel}.conv1.weight"]
        out[f"{rel}.conv1.bias"] = torch.zeros(w.shape[0], dtype=w.dtype)
    return out


# ---------------------------------------------------------------- run directories


def release_config(kind: str, task: str | None = None, overrides: list[str] | None = None):
    """This project's config of the release's model: configs/pascal/{tsn,single_task}.yaml
    with the release's task order (TSN), no pretrained download, a head of the
    task's own width (single-task) and the release's test geometry."""
    from tsn.config import load_config

    root = Path(__file__).resolve().parents[1] / "configs" / "pascal"
    if kind == "tsn":
        base = [f"data.tasks=[{', '.join(RELEASE_TASK_ORDER)}]", "name=release_tsn"]
        path = root / "tsn.yaml"
    else:
        base = [f"data.tasks=[{task}]", "model.head_width=null", f"name=release_single_task_{task}"]
        path = root / "single_task.yaml"
    fixed = ["model.pretrained=false", "model.encoder=resnet18", "model.encoder_width=64", "model.head=mean",
             "eval.geometry=release"]
    if kind == "tsn":
        fixed += ["model.options.tsn.code.kind=orthogonal", "model.options.tsn.code.dim=100",
                  "model.options.tsn.embedding.n_fc=8", "model.options.tsn.embedding.equalized=true",
                  "model.head_width=21"]
    return load_config(path, overrides=[*base, *fixed, *(overrides or [])])


def import_release(checkpoint: str | Path, kind: str, out: str | Path, task: str | None = None,
                   overrides: list[str] | None = None) -> dict[str, Any]:
    """Convert a release checkpoint into the run directory ``out``; returns the import note."""
    from tsn.config import to_dict, to_yaml
    from tsn.engine.checkpoint import save_checkpoint
    from tsn.io import atomic_write_json, atomic_write_text
    from tsn.models import build_model
    from tsn.models.registry import task_channels_for

    if kind not in KINDS:
        raise ConfigError(f"--kind: {kind!r} is not valid; valid: {', '.join(KINDS)}")
    if kind == "tsn" and task is not None:
        raise ConfigError("--task is for --kind single_task; the TSN holds all five tasks")
    if kind == "single_task":
        if task is None:
            raise ConfigError("--kind single_task needs --task (semseg, parts, edge, normals or sal)")
        task = canonical_task(task)
    out = Path(out)
    if (out / "checkpoints").exists() or (out / "config.yaml").exists() or (out / "metrics.json").exists():
        raise ConfigError(f"{out} already holds a run; choose another --out (nothing is overwritten)")
    cfg = release_config(kind, task, overrides)
    model = build_model(cfg.model, task_channels_for(list(cfg.data.tasks), cfg.data.name))
    release = read_release_checkpoint(checkpoint)
    converted, dropped = convert_state(release, kind, task)
    target = model.state_dict()
    for k, v in converted.items():
        if k not in target:
            raise ReleaseError(f"release key {release_key(k, kind, task)} has no place in the {kind} model built here")
        if tuple(v.shape) != tuple(target[k].shape):
            raise ReleaseError(f"release key {release_key(k, kind, task)} has shape {list(v.shape)}, "
                               f"the release's layout has {list(target[k].shape)}")
    filled = {}
    for k, v in target.items():
        if k in converted:
            filled[k] = converted[k].to(v.dtype)
        elif k.startswith("codes."):  # the release's code blocks, from the task order
            filled[k] = v
        elif k.endswith("num_batches_tracked"):  # not used in eval mode; absent in old torch saves
            filled[k] = torch.zeros_like(v)
        else:
            raise ReleaseError(f"release key {release_key(k, kind, task)} is missing from {checkpoint}")
    model.load_state_dict(filled)
    sha = hashlib.sha1(Path(checkpoint).read_bytes()).hexdigest()
    note = {"source": str(Path(checkpoint).resolve()), "source_sha1": sha, "kind": kind, "task": task,
            "tasks": list(cfg.data.tasks), "release_task_order": list(RELEASE_TASK_ORDER) if kind == "tsn" else [task],
            "dropped": sorted(dropped), "converted_keys": len(converted)}
    try:
        atomic_write_text(out / "config.yaml", to_yaml(cfg))
        save_checkpoint(out / "checkpoints" / "best.pt", model, config=to_dict(cfg), tasks=model.task_channels,
                        epoch=None, best={"epoch": None}, release=note)
        atomic_write_json(out / "release_import.json", note)
    except OSError as e:
        raise ConfigError(f"cannot write the run to {out}: {e.strerror or e}") from None
    return note


__all__ = ["KINDS", "RELEASE_TASK_ORDER", "ReleaseError", "convert_state", "import_release", "read_release_checkpoint",
           "release_config", "release_key", "to_release_state"]
