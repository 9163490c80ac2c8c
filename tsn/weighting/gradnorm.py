"""GradNorm (Chen, Badrinarayanan, Lee & Rabinovich, ICML 2018).

Learned task weights w_t are pushed so that the gradient norm each weighted
task loss produces on the last shared layer W, G_t = ||grad_W w_t L_t||,
tracks mean(G) * r_t^alpha, where r_t = (L_t / L_t(0)) / mean_k(L_k / L_k(0))
is the task's relative inverse training rate.  After every optimizer step
the weights are renormalised to sum to K (the number of tasks).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from tsn.errors import ConfigError
from tsn.weighting.base import WEIGHTINGS, Weighting, as_float_dict

INITS = ("static", "ones")


@WEIGHTINGS.register("gradnorm")
class GradNormWeighting(Weighting):
    """GradNorm with ``alpha`` (default 1.5) and ``init``.

    ``init="static"`` (default): w_t(0) = K * s_t / sum_k s_k from the static
    config weights s (all 1 when none are given, i.e. the paper's w = 1);
    ``init="ones"``: w_t(0) = 1 and the static weights are ignored.  The
    static weights never multiply the losses beyond the initial value,
    because GradNorm's weights are the full loss weights it balances.

    Gradient routing: the returned total is ``sum_t w_t.detach() * L_t``, so
    the network is trained with the current weights while the weights
    receive no gradient from the task losses.  The GradNorm loss
    ``sum_t |G_t - target_t|`` (target constant) is added as
    ``gn - gn.detach()``: zero in value, but its gradient reaches ``w``
    during the trainer's ordinary ``backward()``.  This gives w.grad =
    d(gn)/dw exactly as if it were stored by hand, but also works with
    gradient accumulation, loss scaling (AMP GradScaler scales and unscales
    it like every other gradient) and any zero_grad placement.  Since
    ``G_t = w_t * ||grad_W L_t||`` for a scalar w_t > 0, only first-order
    gradients are needed; the task-gradient norms are one extra
    ``autograd.grad`` per task through the part of the graph above W.

    Updates happen only in training mode, with grad enabled, when *all*
    configured tasks are present and ``shared_params`` is given.  With a
    subset of tasks (task-switching schedule, missing labels) the current
    weights are used as they are and not updated: the relative rates and
    mean gradient norm are undefined without every task.  L_t(0) is the
    loss at the first update step (kept in a buffer, so resumes keep it).
    In :meth:`after_step` the weights are clamped to >= 1e-6 (so
    G_t = |w_t| ||grad L_t|| still holds) and rescaled to sum to K.

    Sets ``requires_all_tasks``: under one-task-per-step sampling it would
    never update, so the trainer refuses that combination.
    """

    requires_all_tasks = True

    def __init__(
        self,
        tasks: list[str],
        weights: dict[str, float] | None = None,
        *,
        alpha: float = 1.5,
        init: str = "static",
    ) -> None:
        super().__init__(tasks, weights)
        if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha >= 0):
            raise ConfigError(f"gradnorm alpha must be a finite number >= 0, got {alpha!r}")
        if init not in INITS:
            raise ConfigError(f"unknown gradnorm init {init!r}; valid: {', '.join(INITS)}")
        self.alpha = float(alpha)
        self.init = init
        k = len(self.tasks)
        if init == "ones":
            w0 = [1.0] * k
        else:
            s = [self.static[t] for t in self.tasks]
            if sum(s) <= 0:
                raise ConfigError("gradnorm init='static' needs at least one static weight > 0")
            w0 = [k * v / sum(s) for v in s]
        self.task_weights = nn.Parameter(torch.tensor(w0, dtype=torch.float32))
        self.register_buffer("initial_losses", torch.full((k,), float("nan")))
        self.last_gradnorm_loss: float | None = None

    def forward(
        self, losses: dict[str, Tensor], shared_params: list[nn.Parameter] | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        present = self.present(losses)
        device = losses[present[0]].device
        w = self.task_weights.to(device)
        wd = w.detach()
        total = None
        for t in present:
            term = wd[self.tasks.index(t)] * losses[t]
            total = term if total is None else total + term
        assert total is not None
        reported = as_float_dict(self.tasks, self.task_weights)

        update = len(present) == len(self.tasks) and self.training and torch.is_grad_enabled()
        if not update:
            return total, reported
        if shared_params is None:
            raise ValueError("gradnorm needs shared_params (the last shared layer) in training steps")
        params = [p for p in shared_params if p.requires_grad]
        if not params:
            raise ValueError("gradnorm: none of shared_params requires grad")

        loss_vec = torch.stack([losses[t].detach().float().reshape(()) for t in self.tasks]).to(device)
        if torch.isnan(self.initial_losses).any():
            self.initial_losses.copy_(loss_vec.to(self.initial_losses.device))
        init = self.initial_losses.to(device).clamp_min(1e-12)

        norms = []
        for t in self.tasks:
            loss = losses[t]
            if not loss.requires_grad:
                norms.append(torch.zeros((), device=device))
                continue
            grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
            sq = [g.detach().float().pow(2).sum() for g in grads if g is not None]
            norms.append(torch.stack(sq).sum().sqrt().to(device) if sq else torch.zeros((), device=device))
        norm_vec = torch.stack(norms)

        g_w = w * norm_vec  # G_t, differentiable in w only
        ratio = loss_vec / init
        rel = ratio / ratio.mean()
        target = (g_w.mean() * rel.pow(self.alpha)).detach()
        gn = (g_w - target).abs().sum()
        self.last_gradnorm_loss = float(gn.detach())
        return total + (gn - gn.detach()), reported

    def backward(self, losses: dict[str, Tensor], model: nn.Module) -> tuple[Tensor, dict[str, float]]:
        """The balanced total with ``model.gradnorm_parameters()`` as W, backpropagated."""
        total, weights = self(losses, model.gradnorm_parameters())
        total.backward()
        return total, weights

    @torch.no_grad()
    def after_step(self) -> None:
        w = self.task_weights
        w.clamp_(min=1e-6)
        w.mul_(len(self.tasks) / w.sum())

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, alpha={self.alpha}, init={self.init!r}"
