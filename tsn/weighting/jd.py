"""Gradient-balancing methods through TorchJD (https://github.com/TorchJD/torchjd):
UPGrad (Quinton & Rey 2024), MGDA (Désidéri 2012; Sener & Koltun 2018),
PCGrad (Yu et al. 2020), CAGrad (Liu et al. 2021), Nash-MTL (Navon et al.
2022) and IMTL-G (Liu et al. 2021). Nothing here re-implements them: the
aggregators are torchjd's.

Per step, with static config weights s_t: the Jacobian J (one row per task,
row t = grad of s_t L_t) of the model's *shared* parameters
(``model.shared_parameters()``: the encoder, plus TSN's shared decoder, and
whatever each architecture says every task depends on) is computed by
``torchjd.autojac.backward`` and reduced by the aggregator into their
``.grad`` (``torchjd.autojac.jac_to_grad``); every other trainable parameter
gets the ordinary gradient of sum_t s_t L_t, i.e. a task-specific part its
own task's gradient (``mtl_backward``'s rule, without needing the model to
expose one feature tensor). Set ``loss.weights`` to 1 for the methods'
unweighted form.

The rows are differentiated in one vectorised (``torch.vmap``) backward
pass; when an operation of the model has no batching rule (on CPU the
decoder's channels-last gradient hook has none), the pass is redone row by
row and the method stays row by row for the run (``chunk_size: 1`` asks
for that from the start).

Every task's loss is needed each step (``requires_all_tasks``: sampling
``all``). Under DDP the Jacobian would be computed outside DDP's gradient
synchronisation, so these methods refuse to run on more than one process.
Nash-MTL's solver state (its step counter, the last weights, which are
both the next solve's starting point and the weights reused between solves,
and the normalisation) is saved with the weighting's ``state_dict`` (module
extra state), so a resumed run continues the same sequence of weights.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from tsn.errors import ConfigError
from tsn.weighting.base import WEIGHTINGS, Weighting, weighted_sum


def _number(name: str, key: str, value, lo: float, lo_open: bool = False, integer: bool = False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > lo if lo_open else value >= lo) and (not integer or float(value).is_integer())
    if not ok:
        kind = "an integer" if integer else "a finite number"
        raise ConfigError(f"{name} {key} must be {kind} {'>' if lo_open else '>='} {lo:g}, got {value!r}")
    return int(value) if integer else float(value)


class JDWeighting(Weighting):
    """Base: the Jacobian of the shared parameters, aggregated by ``self.aggregator``."""

    requires_all_tasks = True
    name = "jd"

    def __init__(self, tasks: list[str], weights: dict[str, float] | None = None, *,
                 chunk_size: int | None = None) -> None:
        super().__init__(tasks, weights)
        import importlib.util

        if importlib.util.find_spec("torchjd") is None:
            raise ConfigError(f'weighting {self.name!r} needs torchjd: pip install "torchjd[nash-mtl,cagrad,quadprog-projector]"')
        self.chunk_size = None if chunk_size is None else _number(self.name, "chunk_size", chunk_size, 1, integer=True)
        self._chunk = self.chunk_size  # None: all task rows in one vmap-ed pass
        self.aggregator = self.make_aggregator()
        self.last_weights: dict[str, float] = dict(self.static)

    def make_aggregator(self) -> nn.Module:
        raise NotImplementedError

    def forward(self, losses: dict[str, Tensor], shared_params=None) -> tuple[Tensor, dict[str, float]]:
        raise ConfigError(f"weighting {self.name!r} combines per-task gradients itself; "
                          "it runs only through weighting.backward(losses, model)")

    def backward(self, losses: dict[str, Tensor], model: nn.Module) -> tuple[Tensor, dict[str, float]]:
        """Set ``.grad`` of every trainable parameter of ``model``; return
        (sum_t s_t L_t detached, each task's multiplier on the shared update)."""
        from torchjd.autojac import backward as jd_backward
        from torchjd.autojac import jac_to_grad

        present = self.present(losses)
        if present != self.tasks:
            missing = [t for t in self.tasks if t not in losses]
            raise ConfigError(f"weighting {self.name!r} needs every task's loss each step (train.sampling: all); "
                              f"missing: {', '.join(missing)}")
        if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
            raise ConfigError(f"weighting {self.name!r} does not run under DDP (torchjd's Jacobian bypasses DDP's "
                              "gradient synchronisation); train on one process")
        model = getattr(model, "module", model)  # a DDP/compiled wrapper's model
        shared = [p for p in model.shared_parameters() if p.requires_grad]
        if not shared:
            raise ConfigError(f"{type(model).__name__} shares no trainable parameter between tasks; "
                              f"weighting {self.name!r} has nothing to balance")
        ids = {id(p) for p in shared}
        rest = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
        scaled = [self.static[t] * losses[t] for t in self.tasks]
        total = weighted_sum(losses, self.tasks, self.static)
        if rest:
            torch.autograd.backward(total, inputs=rest, retain_graph=True)
        try:  # retain_graph: a failed vectorised pass can be redone sequentially on the same graph
            jd_backward(scaled, inputs=shared, retain_graph=True, parallel_chunk_size=self._chunk)
        except RuntimeError as e:
            if self._chunk == 1 or not any(k in str(e).lower() for k in ("vmap", "batching rule", "batched")):
                raise
            for p in shared:
                if hasattr(p, "jac"):
                    del p.jac
            self._chunk = 1  # from now on: one task row at a time
            jd_backward(scaled, inputs=shared, retain_graph=True, parallel_chunk_size=1)
        w = jac_to_grad(shared, self.aggregator)
        if w is not None:
            self.last_weights = {t: self.static[t] * float(v) for t, v in zip(self.tasks, w.detach().cpu().tolist())}
        return total.detach(), dict(self.last_weights)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, aggregator={self.aggregator!r}"


@WEIGHTINGS.register("upgrad")
class UPGradWeighting(JDWeighting):
    """UPGrad: each task gradient projected onto the dual cone of all of them, averaged
    (or weighted by ``pref_vector``, one non-negative number per task)."""

    name = "upgrad"

    def __init__(self, tasks, weights=None, *, pref_vector: list[float] | None = None, chunk_size: int | None = None):
        self.pref = None
        if pref_vector is not None:
            if not isinstance(pref_vector, (list, tuple)) or len(pref_vector) != len(tasks):
                raise ConfigError(f"upgrad pref_vector must be a list of {len(tasks)} numbers (one per task), "
                                  f"got {pref_vector!r}")
            self.pref = [_number("upgrad", "pref_vector entry", v, 0) for v in pref_vector]
        super().__init__(tasks, weights, chunk_size=chunk_size)

    def make_aggregator(self):
        from torchjd.aggregation import UPGrad

        return UPGrad(pref_vector=None if self.pref is None else torch.tensor(self.pref))


@WEIGHTINGS.register("mgda")
class MGDAWeighting(JDWeighting):
    """MGDA: the minimum-norm point of the convex hull of the task gradients
    (Frank-Wolfe until the step is below ``epsilon`` or ``max_iters``)."""

    name = "mgda"

    def __init__(self, tasks, weights=None, *, epsilon: float = 1e-3, max_iters: int = 100,
                 chunk_size: int | None = None):
        self.epsilon = _number("mgda", "epsilon", epsilon, 0, lo_open=True)
        self.max_iters = _number("mgda", "max_iters", max_iters, 1, integer=True)
        super().__init__(tasks, weights, chunk_size=chunk_size)

    def make_aggregator(self):
        from torchjd.aggregation import MGDA

        return MGDA(epsilon=self.epsilon, max_iters=self.max_iters)


@WEIGHTINGS.register("pcgrad")
class PCGradWeighting(JDWeighting):
    """PCGrad: each task gradient projected off the others it conflicts with, summed."""

    name = "pcgrad"

    def make_aggregator(self):
        from torchjd.aggregation import PCGrad

        return PCGrad()


@WEIGHTINGS.register("cagrad")
class CAGradWeighting(JDWeighting):
    """CAGrad: the update maximising the worst task's improvement within a ball of
    radius ``c`` times the mean gradient's norm around it (c = 0: the mean; torchjd has
    no default for c, 0.4 here)."""

    name = "cagrad"

    def __init__(self, tasks, weights=None, *, c: float = 0.4, chunk_size: int | None = None):
        self.c = _number("cagrad", "c", c, 0)
        super().__init__(tasks, weights, chunk_size=chunk_size)

    def make_aggregator(self):
        from torchjd.aggregation import CAGrad

        return CAGrad(c=self.c)


@WEIGHTINGS.register("nash_mtl")
class NashMTLWeighting(JDWeighting):
    """Nash-MTL: the Nash bargaining solution over the task gradients, re-solved
    every ``update_weights_every`` steps with ``optim_niter`` solver iterations, the
    update norm capped at ``max_norm`` (torchjd's defaults)."""

    name = "nash_mtl"

    def __init__(self, tasks, weights=None, *, max_norm: float = 1.0, update_weights_every: int = 1,
                 optim_niter: int = 20, chunk_size: int | None = None):
        self.max_norm = _number("nash_mtl", "max_norm", max_norm, 0, lo_open=True)
        self.update_every = _number("nash_mtl", "update_weights_every", update_weights_every, 1, integer=True)
        self.niter = _number("nash_mtl", "optim_niter", optim_niter, 1, integer=True)
        super().__init__(tasks, weights, chunk_size=chunk_size)

    def get_extra_state(self) -> dict:
        w = self.aggregator.weighting
        return {"step": float(w.step), "prvs_alpha": torch.as_tensor(w.prvs_alpha).clone(),
                "normalization_factor": torch.as_tensor(w.normalization_factor).clone()}

    def set_extra_state(self, state: dict) -> None:
        import numpy as np

        w = self.aggregator.weighting
        w.reset()
        w.step = float(state["step"])
        w.prvs_alpha = np.asarray(state["prvs_alpha"].numpy(), dtype=np.float32)
        w.normalization_factor = np.asarray(state["normalization_factor"].numpy())
        if w.step > 0:  # torchjd builds its problem at step 0; a restored solver is past it
            w._init_optim_problem()

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        if "_extra_state" not in state_dict:  # a checkpoint from before the solver state was saved
            return super().load_state_dict(state_dict, strict=False, assign=assign)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def make_aggregator(self):
        try:
            from torchjd.aggregation import NashMTL

            return NashMTL(n_tasks=len(self.tasks), max_norm=self.max_norm,
                           update_weights_every=self.update_every, optim_niter=self.niter)
        except ImportError:
            raise ConfigError('nash_mtl needs cvxpy and ecos: pip install "torchjd[nash-mtl]"') from None


@WEIGHTINGS.register("imtl_g")
class IMTLGWeighting(JDWeighting):
    """IMTL-G: the combination whose projection on every task gradient's direction is equal."""

    name = "imtl_g"

    def make_aggregator(self):
        from torchjd.aggregation import IMTLG

        return IMTLG()


JD_METHODS = ("upgrad", "mgda", "pcgrad", "cagrad", "nash_mtl", "imtl_g")

__all__ = ["JDWeighting", "JD_METHODS"]
