"""Streaming metric base class.

Every metric keeps its whole state as a dict of tensors that are *additive*
counts or sums over images or pixels. That is what makes evaluation
order-free and distributable: merging two halves of a split, or summing the
state over processes (``all_reduce``), gives exactly the numbers of one pass
over the whole split.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from tsn.registry import Registry

METRICS: Registry[type["Metric"]] = Registry("metric")


class Metric:
    """Base: subclasses define ``_zero_state``, ``update`` and ``compute``.

    State tensors live on the CPU in int64 / float64, so that sums over a
    whole split neither overflow nor lose precision.
    """

    task: str = ""

    def __init__(self) -> None:
        self._state: dict[str, Tensor] = {}
        self.reset()

    # --- to implement -------------------------------------------------
    def _zero_state(self) -> dict[str, Tensor]:
        raise NotImplementedError

    def update(self, pred: Tensor, target: Tensor) -> None:
        raise NotImplementedError

    def compute(self) -> dict[str, float]:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Options that must agree for two states to be mergeable."""
        return {}

    # --- shared -------------------------------------------------------
    def reset(self) -> None:
        self._state = self._zero_state()

    def state(self) -> dict[str, Tensor]:
        return {k: v.clone() for k, v in self._state.items()}

    def load_state(self, state: dict[str, Tensor]) -> None:
        ref = self._zero_state()
        if set(state) != set(ref) or any(state[k].shape != ref[k].shape for k in ref):
            raise ValueError(f"{type(self).__name__}: state does not match this metric's options")
        self._state = {k: state[k].detach().to("cpu", ref[k].dtype).clone() for k in ref}

    def merge(self, other: "Metric") -> "Metric":
        """Add another metric's counts to this one (e.g. the other half of a split)."""
        if type(other) is not type(self) or other.config() != self.config():
            raise ValueError(
                f"cannot merge {type(other).__name__}{other.config()} "
                f"into {type(self).__name__}{self.config()}"
            )
        for k, v in other._state.items():
            self._state[k] += v
        return self

    def _add(self, **parts: Tensor) -> None:
        for k, v in parts.items():
            self._state[k] += v.detach().to("cpu", self._state[k].dtype)

    def all_reduce(self) -> None:
        """Sum the state over all processes; a no-op without torch.distributed."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        device = torch.device("cpu")
        if dist.get_backend() == "nccl":
            device = torch.device("cuda", torch.cuda.current_device())
        for k, v in self._state.items():
            t = v.to(device)
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
            self._state[k] = t.cpu()


def as_labels(x: Tensor) -> Tensor:
    """[B,1,H,W] or [B,H,W] integer labels -> [B,H,W] long."""
    if x.dim() == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() != 3:
        raise ValueError(f"expected labels [B,H,W] or [B,1,H,W], got {tuple(x.shape)}")
    return x.long()


def as_map(x: Tensor) -> Tensor:
    """[B,1,H,W] or [B,H,W] single-channel map -> [B,H,W]."""
    if x.dim() == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() != 3:
        raise ValueError(f"expected a map [B,1,H,W] or [B,H,W], got {tuple(x.shape)}")
    return x


def check_same_size(pred: Tensor, target: Tensor, task: str) -> None:
    if pred.shape[0] != target.shape[0] or pred.shape[-2:] != target.shape[-2:]:
        raise ValueError(
            f"{task} metric: prediction {tuple(pred.shape)} and label {tuple(target.shape)} "
            "differ in batch or spatial size; resize the prediction to the label first"
        )
