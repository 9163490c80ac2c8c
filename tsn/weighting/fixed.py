"""Fixed weights: the paper's setting (weights come from the config)."""

from __future__ import annotations

from torch import Tensor, nn

from tsn.weighting.base import WEIGHTINGS, Weighting, weighted_sum


@WEIGHTINGS.register("fixed")
class FixedWeighting(Weighting):
    """total = sum_t w_t L_t over the tasks present; w_t from config, missing = 1."""

    def forward(
        self, losses: dict[str, Tensor], shared_params: list[nn.Parameter] | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        present = self.present(losses)
        return weighted_sum(losses, present, self.static), dict(self.static)
