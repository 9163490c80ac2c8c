"""Optimizer with per-part learning rates, and the learning-rate schedules.

The release trains the encoder at 1e-6 and everything else at 1e-4; learned
loss-weighting parameters get their own group without weight decay.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tsn.config import OptimConfig
from tsn.errors import ConfigError


def build_optimizer(cfg: OptimConfig, model: nn.Module, extra_groups: list[dict] | None = None) -> torch.optim.Optimizer:
    from tsn.nn.norms import TaskBN, TaskIN

    # optim.norm_lr: the per-task affines of task_in / task_bn get their own rate
    norm_ids = set()
    if cfg.norm_lr is not None:
        norm_ids = {id(p) for m in model.modules() if isinstance(m, (TaskIN, TaskBN)) for p in m.parameters()}
        if not norm_ids:
            raise ConfigError(f"optim.norm_lr={cfg.norm_lr} is the rate of task-specific IN/BN affines, and "
                              f"{type(model).__name__} has none; use it with task_in or task_bn, or leave it null")
    enc, rest, norms = [], [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            if id(p) in norm_ids:
                norms.append(p)
            else:
                (enc if name.startswith(("encoder.", "encoders.")) else rest).append(p)
    groups = [g for g in (
        {"params": enc, "lr": cfg.encoder_lr if cfg.encoder_lr is not None else cfg.lr, "name": "encoder"},
        {"params": rest, "lr": cfg.lr, "name": "decoder"},
        {"params": norms, "lr": cfg.norm_lr, "name": "task_norm"},
    ) if g["params"]]
    for g in extra_groups or []:
        groups.append({**g, "name": "weighting"})
    if cfg.name == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise ConfigError(f"optim.name: {cfg.name!r} is not valid; valid: adam, adamw, sgd")


class Schedule:
    """One interface over the schedules: ``step_iter()`` after every optimizer
    step (poly, cosine, warm-up) and ``step_epoch(val_loss)`` after a
    validation (plateau)."""

    def __init__(self, cfg: OptimConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int, epochs: int) -> None:
        self.cfg = cfg
        self.total = max(1, steps_per_epoch * epochs)
        self.warmup = cfg.warmup_epochs * steps_per_epoch
        self.plateau = (
            torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg.plateau_factor, patience=cfg.plateau_patience,
                                                       min_lr=cfg.min_lr)
            if cfg.schedule == "plateau" else None
        )
        self.lambda_ = torch.optim.lr_scheduler.LambdaLR(optimizer, self._factor)

    def _factor(self, it: int) -> float:
        if self.warmup and it < self.warmup:
            return (it + 1) / self.warmup
        if self.cfg.schedule == "poly":
            return max(0.0, 1 - it / self.total) ** self.cfg.poly_power
        if self.cfg.schedule == "cosine":
            t = (it - self.warmup) / max(1, self.total - self.warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
        return 1.0

    def step_iter(self) -> None:
        # under plateau, the lambda only ramps the warm-up, then leaves the lr to the plateau scheduler
        if self.cfg.schedule != "plateau" or self.lambda_.last_epoch < self.warmup:
            self.lambda_.step()

    def step_epoch(self, val_loss: float) -> None:
        if self.plateau is not None:
            self.plateau.step(val_loss)

    def state_dict(self) -> dict:
        return {"lambda": self.lambda_.state_dict(), "plateau": self.plateau.state_dict() if self.plateau else None}

    def load_state_dict(self, state: dict) -> None:
        self.lambda_.load_state_dict(state["lambda"])
        if self.plateau is not None and state.get("plateau"):
            self.plateau.load_state_dict(state["plateau"])
