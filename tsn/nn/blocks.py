"""The conditional convolution module A: conv -> conditional norm -> activation."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tsn.nn.condition import Condition
from tsn.nn.norms import build_norm

ACTIVATIONS = {
    "leaky_relu": lambda: nn.LeakyReLU(0.01, inplace=True),  # the release's decoder activation
    "relu": lambda: nn.ReLU(inplace=True),
}


class CondConv(nn.Module):
    """A(x, l) of the paper. The convolution does not depend on the task, so
    it may run once per image and be repeated ``repeat`` times (one copy per
    task) just before the task-dependent normalisation: the stacked decoder
    uses this on the encoder skips."""

    def __init__(self, cin: int, cout: int, kernel: int, norm: str, n_tasks: int,
                 act: str = "leaky_relu", **norm_opts: object) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False)
        self.norm = build_norm(norm, cout, n_tasks, **norm_opts)
        self.act = ACTIVATIONS[act]()

    def forward(self, x: Tensor, cond: Condition, repeat: int = 1) -> Tensor:
        x = self.conv(x)
        if repeat > 1:  # cat, not repeat: it keeps a channels-last map channels-last
            x = torch.cat([x] * repeat)
        return self.act(self.norm(x, cond))
