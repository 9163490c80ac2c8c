"""Builders from a config: device, data loaders, loss, metrics, references.

The trainer, ``python -m eval``, ``train.add_task`` and the benchmarks build
these the same way, so they live here rather than in any one of them
(``train/`` never imports ``eval/``, and no command reaches into the
trainer module for a helper).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from tsn.config import Config
from tsn.data import build_dataset, collate, dataset_info
from tsn.engine.sampling import EpochSampler, SeededDataset
from tsn.tasks import get_task
from tsn.errors import ConfigError


def resolve_device(name: str | torch.device, where: str = "train.device",
                   types: tuple[str, ...] = ("cpu", "cuda")) -> torch.device:
    """``auto``: CUDA when available, else CPU; an unknown device, one whose type is
    not in ``types``, or an absent CUDA device is a one-line error naming ``where``."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"{where}: unknown device {name!r}; use cpu, cuda, cuda:N or auto") from None
    if dev.type not in types:
        raise ConfigError(f"{where}: {name!r} is not supported; use cpu, cuda, cuda:N or auto")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{where} is {name!r} but no CUDA device is available; use cpu or auto")
    return dev


def metric_options(cfg: Config, validation: bool = False) -> dict[str, Any]:
    """Keyword arguments of :class:`tsn.metrics.MultiTaskMetrics`: each task's metric
    arguments from ``eval.options.<task>`` and the dataset's facts. ``validation``
    selects the tasks' coarser training-time options (edge: ``val_thresholds``)."""
    info = dataset_info(cfg.data.name)
    return {"options": {t: get_task(t).metric_kwargs(cfg.eval.options.get(t), info, validation)
                        for t in cfg.data.tasks}}


def build_metrics(cfg: Config, tasks: list[str] | None = None, validation: bool = False):
    from tsn.metrics import MultiTaskMetrics

    return MultiTaskMetrics(list(tasks or cfg.data.tasks), **metric_options(cfg, validation))


def build_criterion(cfg: Config, tasks: list[str] | None = None):
    from tsn.losses import MultiTaskLoss
    from tsn.losses_aux import DeepSupervisionLoss

    # models with intermediate predictions (PAD-Net, MTI-Net) return them as "task@name"
    # keys; the wrapper supervises them with the same per-task losses
    return DeepSupervisionLoss(MultiTaskLoss(list(tasks or cfg.data.tasks), cfg.loss.options))


def load_reference(path: str | Path | None) -> dict[str, dict[str, float]] | None:
    """Single-task reference results: a run dir, or a metrics.json (its "val" entry)."""
    if not path:
        return None
    p = Path(path)
    if p.is_dir():
        p = p / "metrics.json"
    if not p.is_file():
        raise ConfigError(f"eval.single_task: no metrics.json at {p}")
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"eval.single_task: cannot read {p}: {type(e).__name__}") from None
    return data.get("val", data)


def build_data(cfg: Config, split: str, train: bool, rank: int = 0, world: int = 1, batch_size: int | None = None):
    """(dataset, sampler, loader) of ``split``; training data is seeded per (epoch, index) and shuffled."""
    ds = build_dataset(
        cfg.data.name, root=cfg.data.root, split=split, tasks=list(cfg.data.tasks), size=cfg.data.size,
        augment=cfg.data.augment and train,
        label_drop=cfg.data.label_drop if train else 0.0, label_drop_seed=cfg.data.label_drop_seed,
        **cfg.data.options,
    )
    if train:
        ds = SeededDataset(ds, cfg.train.seed)
    bs = batch_size or (cfg.train.batch_size if train else cfg.eval.batch_size)
    sampler = EpochSampler(len(ds), cfg.train.seed, shuffle=train, rank=rank, world=world, drop_last=train, batch_size=bs)
    if train and sampler.num_batches() == 0:
        raise ConfigError(f"the {split} split has {len(ds)} samples, fewer than one batch of {bs} per process")
    loader = DataLoader(ds, batch_size=bs, sampler=sampler, collate_fn=collate, num_workers=cfg.data.num_workers,
                        pin_memory=torch.cuda.is_available(), drop_last=False)
    return ds, sampler, loader


__all__ = ["build_criterion", "build_data", "build_metrics", "load_reference", "metric_options", "resolve_device"]
