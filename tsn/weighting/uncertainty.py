"""Homoscedastic-uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018).

Two forms are in use in the multi-task literature and code bases; both are
parametrised by ``s_t = log sigma_t^2`` (initial 0) because learning ``s``
keeps ``sigma^2 = exp(s)`` positive without clamping and avoids dividing by a
learned quantity that could approach 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tsn.errors import ConfigError
from tsn.weighting.base import WEIGHTINGS, Weighting, as_float_dict

FORMS = ("kendall", "liebel")


@WEIGHTINGS.register("uncertainty")
class UncertaintyWeighting(Weighting):
    """Learned per-task uncertainty; ``form`` picks the objective.

    - ``"kendall"`` (DEFAULT): ``exp(-s_t) * w_t L_t + s_t`` -- the widely used
      simplified form of Kendall et al. (the 1/2 factors of the regression
      likelihood dropped, as in their and most follow-up code).
    - ``"liebel"`` (Liebel & Koerner 2018): ``0.5 / sigma_t^2 * w_t L_t +
      log(1 + sigma_t^2)`` with ``sigma_t^2 = exp(s_t)``; the regulariser is
      computed as ``softplus(s_t)`` (= log(1 + exp(s_t))) for stability.  Its
      regulariser stays positive, so the weights cannot run away to make the
      total loss negative.

    ``w_t`` are the static config weights.  The reported weight is the
    multiplier of ``L_t``: ``w_t exp(-s_t)`` or ``0.5 w_t exp(-s_t)``.  Tasks
    absent in a step contribute neither loss nor regulariser, so their ``s``
    gets no gradient that step.
    """

    def __init__(self, tasks: list[str], weights: dict[str, float] | None = None, *, form: str = "kendall") -> None:
        super().__init__(tasks, weights)
        if form not in FORMS:
            raise ConfigError(f"unknown uncertainty form {form!r}; valid: {', '.join(FORMS)}")
        self.form = form
        self.log_vars = nn.Parameter(torch.zeros(len(self.tasks)))
        self.register_buffer("static_w", torch.tensor([self.static[t] for t in self.tasks]), persistent=False)

    def multipliers(self) -> Tensor:
        """Multiplier of each task's loss, differentiable in ``log_vars``."""
        m = self.static_w * torch.exp(-self.log_vars)
        return 0.5 * m if self.form == "liebel" else m

    def regularisers(self) -> Tensor:
        s = self.log_vars
        return F.softplus(s) if self.form == "liebel" else s

    def forward(
        self, losses: dict[str, Tensor], shared_params: list[nn.Parameter] | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        present = self.present(losses)
        mult, reg = self.multipliers(), self.regularisers()
        total = None
        for t in present:
            i = self.tasks.index(t)
            loss = losses[t]
            term = mult[i].to(loss.device) * loss + reg[i].to(loss.device)
            total = term if total is None else total + term
        assert total is not None
        return total, as_float_dict(self.tasks, mult)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, form={self.form!r}"
