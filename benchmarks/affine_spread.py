"""How different the tasks' normalisation affines are at initialisation, and how
far one Adam step moves them: TSN (AdaIN from the task latent) against the
task-specific IN table (docs/results/collapse.md, hypotheses (a) and (d)).

    python benchmarks/affine_spread.py configs/synthetic/tsn.yaml [--set k=v ...]
"""

from __future__ import annotations

import argparse
import json

import torch

from tsn.config import load_config
from tsn.models.registry import build_model, task_channels_for
from tsn.nn.norms import AdaIN, TaskIN


def affines(model) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per decoder norm: (gamma, beta), each [T, C]."""
    out = []
    if hasattr(model, "latents"):
        lat = model.latents()
        for m in model.modules():
            if isinstance(m, AdaIN):
                g, b = m.affine(lat).chunk(2, dim=1)
                out.append((g, b))
    else:
        for m in model.modules():
            if isinstance(m, TaskIN):
                out.append((m.weight, m.bias))
    return out


def summary(model) -> dict[str, float]:
    gs, bs = zip(*affines(model))
    return {"gamma_std_across_tasks": float(torch.stack([g.std(0).mean() for g in gs]).mean()),
            "beta_std_across_tasks": float(torch.stack([b.std(0).mean() for b in bs]).mean()),
            "gamma_mean": float(torch.stack([g.mean() for g in gs]).mean())}


def one_step_move(model, lr: float) -> float:
    """Mean |delta gamma| of task 0 after one Adam step on a random linear loss of its affines."""
    before = [g[0].detach().clone() for g, _ in affines(model)]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    torch.manual_seed(1)
    loss = sum((g[0] * torch.randn_like(g[0])).sum() + (b[0] * torch.randn_like(b[0])).sum() for g, b in affines(model))
    loss.backward()
    opt.step()
    after = [g[0].detach() for g, _ in affines(model)]
    return float(torch.stack([(a - b).abs().mean() for a, b in zip(after, before)]).mean())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("config")
    p.add_argument("--set", action="append", default=[])
    args = p.parse_args()
    cfg = load_config(args.config, args.set)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, task_channels_for(list(cfg.data.tasks), cfg.data.name))
    with torch.no_grad():
        rep = summary(model)
    rep["one_adam_step_mean_abs_dgamma"] = one_step_move(model, cfg.optim.lr)
    print(json.dumps({"config": args.config, "overrides": args.set, "model": cfg.model.name, **rep}))


if __name__ == "__main__":
    main()
