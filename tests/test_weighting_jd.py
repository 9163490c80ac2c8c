"""Gradient balancing through torchjd: the shared parameters get the
aggregator applied to the per-task Jacobian computed here by hand, every
other parameter its ordinary gradient; options and misuse are one-line errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

pytest.importorskip("torchjd")

from torchjd import aggregation as agg  # noqa: E402

from tsn.config import ModelConfig, from_dict  # noqa: E402
from tsn.errors import ConfigError  # noqa: E402
from tsn.models import build_model  # noqa: E402
from tsn.weighting import build_weighting  # noqa: E402
from tsn.weighting.jd import JD_METHODS  # noqa: E402

TASKS = ["a", "b", "c"]
STATIC = {"a": 2.0, "b": 1.0, "c": 0.5}


def reference(name: str):
    """A fresh torchjd aggregator with the method's default options."""
    return {"upgrad": agg.UPGrad(), "mgda": agg.MGDA(), "pcgrad": agg.PCGrad(), "cagrad": agg.CAGrad(c=0.4),
            "nash_mtl": agg.NashMTL(n_tasks=3), "imtl_g": agg.IMTLG()}[name]


class Tiny(nn.Module):
    """A shared trunk and one head per task; the embedding is used by all tasks but not shared."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 5))
        self.embedding = nn.Parameter(torch.randn(5))
        self.heads = nn.ModuleDict({t: nn.Linear(5, 1) for t in TASKS})

    def shared_parameters(self):
        return list(self.encoder.parameters())

    def losses(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.encoder(x) * self.embedding
        return {t: ((self.heads[t](h).squeeze(1) - y[:, i]) ** (i + 1)).abs().mean() for i, t in enumerate(TASKS)}


def hand_jacobian(losses, params):
    rows = []
    for t in TASKS:
        g = torch.autograd.grad(STATIC[t] * losses[t], params, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([(gi if gi is not None else torch.zeros_like(p)).reshape(-1) for gi, p in zip(g, params)]))
    return torch.stack(rows)


@pytest.mark.parametrize("name", JD_METHODS)
def test_shared_gets_the_aggregated_jacobian_and_the_rest_its_own_gradient(name):
    torch.manual_seed(3)
    model = Tiny()
    x, y = torch.randn(8, 4), torch.randn(8, 3)
    losses = model.losses(x, y)
    shared = model.shared_parameters()
    jac = hand_jacobian(losses, shared)
    torch.manual_seed(7)  # PCGrad projects in a random order: the same draws for both
    want_shared = reference(name)(jac)
    want_head = {t: torch.autograd.grad(STATIC[t] * losses[t], list(model.heads[t].parameters()), retain_graph=True)
                 for t in TASKS}
    want_emb = torch.autograd.grad(sum(STATIC[t] * losses[t] for t in TASKS), model.embedding, retain_graph=True)[0]

    weighting = build_weighting(name, TASKS, STATIC)
    assert weighting.requires_all_tasks
    torch.manual_seed(7)
    total, weights = weighting.backward(losses, model)
    got = torch.cat([p.grad.reshape(-1) for p in shared])
    torch.testing.assert_close(got, want_shared, atol=1e-5, rtol=1e-4)
    for t in TASKS:
        for p, g in zip(model.heads[t].parameters(), want_head[t]):
            torch.testing.assert_close(p.grad, g)
    torch.testing.assert_close(model.embedding.grad, want_emb)
    torch.testing.assert_close(total, sum(STATIC[t] * losses[t] for t in TASKS).detach())
    assert set(weights) == set(TASKS) and all(v >= -1e-6 or name == "pcgrad" for v in weights.values())
    assert not any(hasattr(p, "jac") for p in shared)  # torchjd's Jacobian fields are freed


def test_mgda_weights_of_two_opposed_gradients_balance_them():
    """Two tasks whose gradients are g and -2g: the min-norm point of their hull is 0,
    at weights (2/3, 1/3)."""
    w = nn.Parameter(torch.tensor([1.0, 2.0]))

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = w

        def shared_parameters(self):
            return [self.w]

    m = M()
    losses = {"a": (w * torch.tensor([1.0, 1.0])).sum(), "b": -2 * (w * torch.tensor([1.0, 1.0])).sum()}
    _, weights = build_weighting("mgda", ["a", "b"]).backward(losses, m)
    assert abs(weights["a"] - 2 / 3) < 1e-2 and abs(weights["b"] - 1 / 3) < 1e-2
    assert w.grad.abs().max() < 1e-2


@pytest.mark.parametrize("name", ["upgrad", "imtl_g"])
def test_on_a_real_model_with_the_row_by_row_fallback(name):
    """TSN on CPU: the decoder has no vmap rule, so the rows are redone one by one;
    the result is still the aggregated hand Jacobian on encoder + decoder."""
    torch.manual_seed(0)
    tasks = {"a": 1, "b": 3, "c": 2}
    cfg = from_dict(ModelConfig, {"name": "tsn", "encoder_width": 8, "skip_widths": [8, 8, 8, 8, 8],
                                  "up_widths": [8, 8, 8, 8, 8], "code": {"dim": 6, "learnable": True},
                                  "embedding": {"n_fc": 1}})
    model = build_model(cfg, tasks).train()
    out = model(torch.randn(2, 3, 32, 32))
    losses = {t: out[t].pow(2).mean() for t in tasks}
    shared = model.shared_parameters()
    assert not any(n.startswith(("codes.", "embedding.")) for n, p in model.named_parameters()
                   if any(p is q for q in shared))
    want = reference(name)(hand_jacobian(losses, shared))
    weighting = build_weighting(name, list(tasks), STATIC)
    weighting.backward(losses, model)
    assert weighting._chunk == 1
    torch.testing.assert_close(torch.cat([p.grad.reshape(-1) for p in shared]), want, atol=1e-5, rtol=1e-4)
    rest = {n: p for n, p in model.named_parameters() if p.requires_grad and all(p is not q for q in shared)}
    want_rest = torch.autograd.grad(sum(STATIC[t] * losses[t] for t in tasks), list(rest.values()), allow_unused=True)
    assert any(n.startswith("codes.") for n in rest) and any(n.startswith("embedding.") for n in rest)
    for (n, p), g in zip(rest.items(), want_rest):  # embedding and learnable codes: ordinary gradients
        torch.testing.assert_close(p.grad, g, msg=n)


def test_option_errors_are_one_line():
    cases = [("mgda", {"epsilon": 0}, "mgda epsilon must be a finite number > 0"),
             ("mgda", {"max_iters": 2.5}, "mgda max_iters must be an integer"),
             ("cagrad", {"c": -1}, "cagrad c must be a finite number >= 0"),
             ("nash_mtl", {"max_norm": 0}, "nash_mtl max_norm"),
             ("nash_mtl", {"update_weights_every": 0}, "update_weights_every"),
             ("upgrad", {"pref_vector": [1, 2]}, "pref_vector must be a list of 3 numbers"),
             ("upgrad", {"pref_vector": [1, -1, 1]}, "pref_vector entry must be"),
             ("pcgrad", {"chunk_size": 0}, "chunk_size must be an integer >= 1"),
             ("pcgrad", {"c": 1}, "unknown option.*for weighting 'pcgrad'; valid: chunk_size")]
    for name, opts, msg in cases:
        with pytest.raises(ConfigError, match=msg) as e:
            build_weighting(name, TASKS, None, **opts)
        assert "\n" not in str(e.value)


def test_misuse_is_refused_with_one_line():
    model = Tiny()
    w = build_weighting("upgrad", TASKS)
    losses = model.losses(torch.randn(4, 4), torch.randn(4, 3))
    with pytest.raises(ConfigError, match="needs every task's loss each step .train.sampling: all.; missing: b"):
        w.backward({t: losses[t] for t in ("a", "c")}, model)
    with pytest.raises(ConfigError, match="only through weighting.backward"):
        w(losses)
    single = build_model(from_dict(ModelConfig, {"name": "single_task", "encoder_width": 8,
                                                 "skip_widths": [8] * 5, "up_widths": [8] * 5}), {"a": 1, "b": 1, "c": 1})
    out = single.eval()(torch.randn(1, 3, 32, 32))
    with pytest.raises(ConfigError, match="SingleTaskNet shares no trainable parameter"):
        w.backward({t: out[t].mean() for t in TASKS}, single)


def test_refuses_ddp(monkeypatch):
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda *a: 2)
    model = Tiny()
    with pytest.raises(ConfigError, match="does not run under DDP"):
        build_weighting("pcgrad", TASKS).backward(model.losses(torch.randn(4, 4), torch.randn(4, 3)), model)


def test_weighting_benchmark_runs_and_reports_ratios_against_fixed(tmp_path, capsys):
    """Not a timing test: the benchmark's rows and ratios are consistent."""
    import importlib.util
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("bench_weighting", root / "benchmarks" / "bench_weighting.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "w.json"
    assert bench.main(["--device", "cpu", "--size", "32", "--batch", "2", "--tasks", "2", "--rounds", "1",
                       "--methods", "pcgrad", "--json", str(out)]) == 0
    rows = {r["method"]: r for r in json.loads(out.read_text())["rows"]}
    assert list(rows) == ["fixed", "pcgrad"] and rows["fixed"]["time_ratio"] == 1.0
    assert rows["pcgrad"]["time_ratio"] == rows["pcgrad"]["step_ms"] / rows["fixed"]["step_ms"]
    assert all(r["peak_mem_mb"] > 0 for r in rows.values())
    assert "| pcgrad |" in capsys.readouterr().out


def _tiny(weighting: str, sampling: str = "all") -> dict:
    return {
        "data": {"name": "synthetic", "tasks": ["edge", "semseg", "normals"], "size": 32,
                 "options": {"length": {"train": 4, "val": 2, "test": 2}}},
        "model": {"name": "tsn", "encoder_width": 8, "skip_widths": [8, 8, 8, 16, 16], "up_widths": [16, 16, 8, 8, 8],
                  "code": {"dim": 12}, "embedding": {"n_fc": 2}},
        "loss": {"weighting": weighting},
        "optim": {"lr": 1e-3, "schedule": "none"},
        "train": {"epochs": 1, "batch_size": 4, "images_every_val": 0, "sampling": sampling},
        "eval": {"batch_size": 2, "edge_thresholds": 3, "val_edge_thresholds": 3},
    }


@pytest.mark.parametrize("name", ["upgrad", "nash_mtl"])
def test_trains_through_the_trainer_and_refuses_one_task_sampling(tmp_path, name):
    from tsn.config import load_config
    from tsn.engine.trainer import Trainer

    res = Trainer(load_config(data=_tiny(name)), tmp_path, quiet=True).fit()
    assert res["steps"] == 1 and set(res["val"]) == {"edge", "semseg", "normals"}
    with pytest.raises(ConfigError, match="use train.sampling=all"):
        Trainer(load_config(data=_tiny(name, "paper")), tmp_path / "p", quiet=True)


def test_nash_mtl_solver_state_survives_a_checkpoint_round_trip(tmp_path):
    """Resumed at step 3 of a solver that re-solves every 2nd step, Nash-MTL
    goes on with the same weights as without the interruption; a fresh solver
    at that point would not (it solves where the uninterrupted one reuses)."""
    g = torch.Generator().manual_seed(0)
    mats = [torch.randn(3, 20, generator=g, dtype=torch.float64) for _ in range(6)]
    opts = {"update_weights_every": 2, "max_norm": 1e9}  # no clipping: the weights alone
    straight = build_weighting("nash_mtl", TASKS, STATIC, **opts)
    outs = [straight.aggregator(m) for m in mats]

    first = build_weighting("nash_mtl", TASKS, STATIC, **opts)
    for m in mats[:3]:
        first.aggregator(m)
    torch.save(first.state_dict(), tmp_path / "w.pt")
    resumed = build_weighting("nash_mtl", TASKS, STATIC, **opts)
    resumed.load_state_dict(torch.load(tmp_path / "w.pt", weights_only=False))
    for m, want in zip(mats[3:], outs[3:]):
        torch.testing.assert_close(resumed.aggregator(m), want, rtol=1e-6, atol=1e-9)

    fresh = build_weighting("nash_mtl", TASKS, STATIC, **opts)
    assert not torch.allclose(fresh.aggregator(mats[3]), outs[3], rtol=1e-3)
    # a checkpoint written before the solver state was saved still loads (the solver restarts)
    old = {k: v for k, v in first.state_dict().items() if k != "_extra_state"}
    build_weighting("nash_mtl", TASKS, STATIC, **opts).load_state_dict(old)
