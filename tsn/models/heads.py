"""From the decoder's shared output to each task's channels.

``mean`` is the release's head: the shared 1x1 conv outputs ``width``
channels (21 on PASCAL) and each task averages them down to its own count
(adaptive average pooling over the channel axis). It is needed to reproduce
the paper's parameter count. ``slice`` gives each task its own channels of a
wider shared output (width = sum of the tasks' channels).

``output_offset`` (``model.output_offset``, e.g. ``{depth: 4.0}``) adds a fixed
constant to a task's output: a regression target far from 0 (depth in
metres) then starts at its typical value instead of being learned as an
offset at Adam's rate of about lr per step, which a short from-scratch run
does not finish (docs/RESULTS.md). No parameters; the release has none.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tsn.errors import ConfigError

HEAD_KINDS = ("mean", "slice")


def _pool_matrix(width: int, channels: int) -> Tensor:
    """[channels, width] matrix equal to adaptive_avg_pool1d over the channel axis."""
    return F.adaptive_avg_pool1d(torch.eye(width).unsqueeze(0), channels)[0].T.contiguous()


class TaskHeads(nn.Module):
    def __init__(self, kind: str, task_channels: dict[str, int], width: int | None = None,
                 output_offset: dict[str, float] | None = None) -> None:
        super().__init__()
        if kind not in HEAD_KINDS:
            raise ConfigError(f"unknown model.head {kind!r}; valid: {', '.join(HEAD_KINDS)}")
        self.kind = kind
        self.task_channels = dict(task_channels)
        if kind == "mean":
            need = max(task_channels.values())
            self.width = width or need
            if self.width < need:
                raise ConfigError(f"model.head_width {self.width} is below the widest task ({need} channels)")
            for t, c in task_channels.items():
                if c != self.width:
                    self.register_buffer(f"pool_{t}", _pool_matrix(self.width, c), persistent=False)
        else:
            self.width = sum(task_channels.values())
            if width not in (None, self.width):
                raise ConfigError(f"model.head_width must be {self.width} (sum of task channels) for the slice head")
            off, self.offsets = 0, {}
            for t, c in task_channels.items():
                self.offsets[t] = (off, off + c)
                off += c
        self.output_offset = {t: float(v) for t, v in (output_offset or {}).items() if t in self.task_channels and v}

    @classmethod
    def from_config(cls, cfg, task_channels: dict[str, int]) -> "TaskHeads":
        """The heads ``cfg`` (a ModelConfig) asks for: kind, width and output offsets."""
        return cls(cfg.head, task_channels, cfg.head_width, cfg.output_offset)

    def shift(self, y: Tensor, task: str) -> Tensor:
        """``y`` plus the task's output offset (also for auxiliary predictions of that task)."""
        c = self.output_offset.get(task)
        return y if c is None else y + c

    def add_task(self, task: str, channels: int) -> None:
        if self.kind == "slice":
            raise ConfigError("a task cannot be added to a slice head without retraining its output conv; use head: mean")
        if channels > self.width:
            raise ConfigError(f"new task {task!r} needs {channels} channels, the shared output has {self.width}")
        self.task_channels[task] = channels
        if channels != self.width:
            self.register_buffer(f"pool_{task}", _pool_matrix(self.width, channels), persistent=False)

    def forward(self, y: Tensor, task: str) -> Tensor:
        if self.kind == "slice":
            a, b = self.offsets[task]
            out = y[:, a:b]
        elif self.task_channels[task] == self.width:
            out = y
        else:
            out = torch.einsum("nchw,kc->nkhw", y, getattr(self, f"pool_{task}"))
        return self.shift(out, task)
