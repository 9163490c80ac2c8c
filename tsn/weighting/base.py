"""Common interface of the loss weighting methods.

A weighting turns the per-task losses of one step into the single loss the
trainer backpropagates.  Everything a method needs to resume exactly (learned
log-variances, DWA's loss history, GradNorm's initial losses) lives in
parameters or buffers, so ``state_dict()`` is the whole checkpoint.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from tsn.errors import ConfigError
from tsn.registry import Registry

WEIGHTINGS: Registry[type["Weighting"]] = Registry("weighting")


class Weighting(nn.Module):
    """Base class: static weights, task bookkeeping and the trainer hooks.

    Trainer protocol, per step::

        optimizer.zero_grad()
        total, weights = weighting.backward(losses, model)   # losses: subset allowed
        optimizer.step(); weighting.after_step()

    and ``weighting.epoch_end(mean_losses)`` once per epoch.  ``backward`` is
    the one place a method sees the model, so methods that combine per-task
    gradients (GradNorm, the torchjd aggregators of jd.py) override it and the trainer
    never switches on a weighting's name.  Such a method sets
    ``requires_all_tasks = True``: it needs every task's loss in one step, so
    the trainer refuses one-task-per-step sampling (``paper``, ``random``).  Learned weighting
    parameters go into their own optimizer group without weight decay
    (:meth:`param_groups`), because decaying a log-variance or a GradNorm
    weight towards 0 would bias the balance the method is meant to learn.
    """

    requires_all_tasks: bool = False

    def __init__(self, tasks: list[str], weights: dict[str, float] | None = None) -> None:
        super().__init__()
        self.tasks: list[str] = list(tasks)
        weights = dict(weights or {})
        # Missing static weight = 1, so a config only lists the exceptions.
        self.static: dict[str, float] = {t: float(weights.get(t, 1.0)) for t in self.tasks}

    # --- interface -----------------------------------------------------------------
    def forward(
        self, losses: dict[str, Tensor], shared_params: list[nn.Parameter] | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        """Return (total loss over the tasks present, weight of every configured task).

        The reported weights are the multipliers of each ``L_t`` in effect this
        step, for all configured tasks (also the absent ones) so that logged
        curves have the same keys every step.
        """
        raise NotImplementedError

    def backward(self, losses: dict[str, Tensor], model: nn.Module) -> tuple[Tensor, dict[str, float]]:
        """Combine the step's losses, put the gradients in ``.grad``; return (total, weights).

        Default: the weighted sum of :meth:`forward`, then ``total.backward()``.
        ``model`` is the bare model (not a DDP wrapper): methods read layers
        from it (e.g. ``model.gradnorm_parameters()``).
        """
        total, weights = self(losses)
        total.backward()
        return total, weights

    def epoch_end(self, mean_losses: dict[str, float]) -> None:
        """Called once per epoch with the epoch's average training loss per task."""

    def after_step(self) -> None:
        """Called after ``optimizer.step()`` (GradNorm renormalises its weights here)."""

    def param_groups(self, lr: float) -> list[dict]:
        """Optimizer groups for the learned weighting parameters (none if there are none)."""
        params = [p for p in self.parameters() if p.requires_grad]
        if not params:
            return []
        return [{"params": params, "weight_decay": 0.0, "lr": lr}]

    # --- helpers -------------------------------------------------------------------
    def present(self, losses: dict[str, Tensor]) -> list[str]:
        """Configured tasks that have a loss this step, in configured order."""
        unknown = sorted(set(losses) - set(self.tasks))
        if unknown:
            raise ConfigError(
                f"loss for task(s) {', '.join(unknown)} not configured for weighting; "
                f"configured: {', '.join(self.tasks)}"
            )
        present = [t for t in self.tasks if t in losses]
        if not present:
            raise ValueError("weighting called with no task losses")
        return present

    def extra_repr(self) -> str:
        return f"tasks={self.tasks}, static={self.static}"


def check_weighting_args(tasks: list[str], weights: dict[str, float] | None) -> None:
    """Fail early, naming the offending key, on a bad task list or static weight."""
    if not tasks:
        raise ConfigError("weighting needs at least one task")
    dup = sorted({t for t in tasks if list(tasks).count(t) > 1})
    if dup:
        raise ConfigError(f"task(s) listed twice for weighting: {', '.join(dup)}")
    for t, w in (weights or {}).items():
        if t not in tasks:
            raise ConfigError(
                f"loss weight given for task {t!r} which is not trained; tasks: {', '.join(tasks)}"
            )
        if not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ConfigError(f"loss weight for task {t!r} must be a finite number >= 0, got {w!r}")


def weighted_sum(losses: dict[str, Tensor], tasks: list[str], mult: dict[str, float | Tensor]) -> Tensor:
    """sum_t mult_t * L_t over ``tasks`` (the present ones)."""
    total = None
    for t in tasks:
        term = mult[t] * losses[t]
        total = term if total is None else total + term
    assert total is not None
    return total


def as_float_dict(tasks: list[str], values: Tensor) -> dict[str, float]:
    return dict(zip(tasks, (float(v) for v in values.detach().cpu().tolist())))


__all__ = ["WEIGHTINGS", "Weighting", "as_float_dict", "check_weighting_args", "weighted_sum"]
