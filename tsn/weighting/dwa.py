"""Dynamic Weight Average (Liu, Johns & Davison, CVPR 2019, MTAN).

w_t(e) = K exp(r_t(e-1)/temp) / sum_k exp(r_k(e-1)/temp),
r_t(e-1) = L_t(e-1) / L_t(e-2), with L the epoch-average training loss and
K the number of tasks; w = 1 for the first two epochs (no ratio yet).  The
result multiplies the static config weights.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from tsn.errors import ConfigError
from tsn.weighting.base import WEIGHTINGS, Weighting, weighted_sum


@WEIGHTINGS.register("dwa")
class DWAWeighting(Weighting):
    """Loss-ratio softmax weighting, updated once per epoch via :meth:`epoch_end`.

    The last two epoch averages are kept in a float64 buffer (``history``,
    row 0 = e-2, row 1 = e-1) with the number of epochs seen, so a checkpoint
    restores the weights exactly.  A task missing from an epoch's averages
    (never trained that epoch) is stored as NaN; any ratio that cannot be
    formed (NaN, or a previous loss <= 0) is taken as 1, i.e. neutral.
    """

    def __init__(self, tasks: list[str], weights: dict[str, float] | None = None, *, temp: float = 2.0) -> None:
        super().__init__(tasks, weights)
        if not (isinstance(temp, (int, float)) and math.isfinite(temp) and temp > 0):
            raise ConfigError(f"dwa temp must be a finite number > 0, got {temp!r}")
        self.temp = float(temp)
        self.register_buffer("history", torch.full((2, len(self.tasks)), float("nan"), dtype=torch.float64))
        self.register_buffer("epochs_seen", torch.zeros((), dtype=torch.long))

    def epoch_end(self, mean_losses: dict[str, float]) -> None:
        row = torch.tensor(
            [float(mean_losses.get(t, float("nan"))) for t in self.tasks], dtype=torch.float64
        ).to(self.history.device)
        self.history[0] = self.history[1]
        self.history[1] = row
        self.epochs_seen += 1

    def dynamic_weights(self) -> list[float]:
        """DWA factor per configured task (before the static weights)."""
        k = len(self.tasks)
        if int(self.epochs_seen) < 2:
            return [1.0] * k
        prev2, prev1 = self.history.cpu().tolist()
        ratios = []
        for a, b in zip(prev1, prev2):
            ok = math.isfinite(a) and math.isfinite(b) and b > 0
            ratios.append(a / b if ok else 1.0)
        z = torch.tensor(ratios, dtype=torch.float64) / self.temp
        return (k * torch.softmax(z, dim=0)).tolist()

    def current_weights(self) -> dict[str, float]:
        return {t: self.static[t] * d for t, d in zip(self.tasks, self.dynamic_weights())}

    def forward(
        self, losses: dict[str, Tensor], shared_params: list[nn.Parameter] | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        present = self.present(losses)
        w = self.current_weights()
        return weighted_sum(losses, present, w), w

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, temp={self.temp}"
