"""Loss weighting methods against hand-computed values."""

import math

import pytest
import torch

from tsn.errors import ConfigError
from tsn.weighting import WEIGHTINGS, build_weighting


def L(v):
    return torch.tensor(float(v), requires_grad=True)


def test_registry_and_errors():
    assert WEIGHTINGS.names() == ["cagrad", "dwa", "fixed", "gradnorm", "imtl_g", "mgda", "nash_mtl", "pcgrad",
                                  "uncertainty", "upgrad"]  # six via torchjd (tsn/weighting/jd.py)
    with pytest.raises(ConfigError, match="valid: cagrad, dwa, fixed"):
        build_weighting("nope", ["a"])
    with pytest.raises(ConfigError, match="not trained"):
        build_weighting("fixed", ["a"], {"b": 1.0})
    with pytest.raises(ConfigError, match="unknown option"):
        build_weighting("dwa", ["a"], tempo=2)
    with pytest.raises(ConfigError, match="form"):
        build_weighting("uncertainty", ["a"], form="x")
    w = build_weighting("fixed", ["a"])
    with pytest.raises(ConfigError, match="not configured"):
        w({"b": L(1)})
    with pytest.raises(ValueError):
        w({})


def test_fixed_sum_and_subset():
    w = build_weighting("fixed", ["a", "b", "c"], {"a": 2.0, "c": 0.5})
    total, ws = w({"a": L(3), "b": L(4), "c": L(10)})
    assert total.item() == pytest.approx(2 * 3 + 4 + 0.5 * 10)
    assert ws == {"a": 2.0, "b": 1.0, "c": 0.5}
    total, ws = w({"b": L(4)})
    assert total.item() == pytest.approx(4.0)
    assert set(ws) == {"a", "b", "c"}
    assert w.param_groups(0.1) == [] and list(w.parameters()) == []


@pytest.mark.parametrize("form", ["kendall", "liebel"])
def test_uncertainty_value_and_grad(form):
    w = build_weighting("uncertainty", ["a", "b"], {"b": 2.0}, **({} if form == "kendall" else {"form": form}))
    assert w.form == form
    s = [0.5, -1.0]
    with torch.no_grad():
        w.log_vars.copy_(torch.tensor(s))
    la, lb = L(2), L(3)
    total, ws = w({"a": la, "b": lb})
    total.backward()
    stat = [1.0, 2.0]
    loss = [2.0, 3.0]
    if form == "kendall":
        mult = [sw * math.exp(-si) for sw, si in zip(stat, s)]
        reg = s
        dreg = [1.0, 1.0]
    else:
        mult = [0.5 * sw * math.exp(-si) for sw, si in zip(stat, s)]
        reg = [math.log(1 + math.exp(si)) for si in s]
        dreg = [1 / (1 + math.exp(-si)) for si in s]
    expect = sum(m * l + r for m, l, r in zip(mult, loss, reg))
    assert total.item() == pytest.approx(expect, rel=1e-6)
    assert ws["a"] == pytest.approx(mult[0], rel=1e-6) and ws["b"] == pytest.approx(mult[1], rel=1e-6)
    # d/ds (c e^{-s} L + reg(s)) = -c e^{-s} L + reg'(s)
    ds = [-m * l + d for m, l, d in zip(mult, loss, dreg)]
    assert w.log_vars.grad.tolist() == pytest.approx(ds, rel=1e-6)
    assert la.grad.item() == pytest.approx(mult[0], rel=1e-6)


def test_uncertainty_init_subset_and_groups():
    w = build_weighting("uncertainty", ["a", "b"])
    total, ws = w({"a": L(5)})
    assert total.item() == pytest.approx(5.0)  # s = 0: weight 1, reg 0
    assert ws == {"a": 1.0, "b": 1.0}
    total.backward()
    assert w.log_vars.grad.tolist() == pytest.approx([1 - 5.0, 0.0])
    (g,) = w.param_groups(1e-3)
    assert g["weight_decay"] == 0.0 and g["lr"] == 1e-3 and g["params"][0] is w.log_vars
    liebel = build_weighting("uncertainty", ["a"], form="liebel")
    total, ws = liebel({"a": L(4)})
    assert total.item() == pytest.approx(0.5 * 4 + math.log(2)) and ws["a"] == 0.5


def test_dwa_two_epoch_history_and_state():
    w = build_weighting("dwa", ["a", "b"], {"b": 3.0})
    _, ws = w({"a": L(1), "b": L(1)})
    assert ws == {"a": 1.0, "b": 3.0}
    w.epoch_end({"a": 2.0, "b": 1.0})
    assert w({"a": L(1)})[1] == {"a": 1.0, "b": 3.0}  # still epoch 2: weights 1
    w.epoch_end({"a": 1.0, "b": 1.0})
    # r_a = 1/2, r_b = 1/1, temp 2: w = 2 * softmax([0.25, 0.5])
    ea, eb = math.exp(0.25), math.exp(0.5)
    wa, wb = 2 * ea / (ea + eb), 2 * eb / (ea + eb)
    total, ws = w({"a": L(10), "b": L(1)})
    assert ws["a"] == pytest.approx(wa) and ws["b"] == pytest.approx(3 * wb)
    assert total.item() == pytest.approx(10 * wa + 3 * wb, rel=1e-6)
    assert wa + wb == pytest.approx(2.0)
    # subset: only present tasks summed
    assert w({"b": L(2)})[0].item() == pytest.approx(2 * 3 * wb, rel=1e-6)
    # checkpoint restores exactly
    w2 = build_weighting("dwa", ["a", "b"], {"b": 3.0})
    w2.load_state_dict(w.state_dict())
    assert w2({"a": L(1)})[1] == ws
    # a third epoch shifts the history: ratios from epochs 2 and 3
    w.epoch_end({"a": 0.5, "b": 2.0})
    z = torch.tensor([0.5, 2.0]) / 2
    assert list(w.current_weights().values()) == pytest.approx(
        [2 * torch.softmax(z, 0)[0].item(), 3 * 2 * torch.softmax(z, 0)[1].item()], rel=1e-6
    )


def test_dwa_missing_task_is_neutral():
    w = build_weighting("dwa", ["a", "b"], temp=1.0)
    w.epoch_end({"a": 1.0})
    w.epoch_end({"a": 1.0, "b": 1.0})
    assert list(w.current_weights().values()) == pytest.approx([1.0, 1.0])


def _gradnorm_setup(**opts):
    # shared W (2,), L_a = 3 W0 + 4 W1 (||grad|| = 5), L_b = W0 (||grad|| = 1)
    W = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
    gn = build_weighting("gradnorm", ["a", "b"], **opts)
    return W, gn


def _gn_losses(W):
    return {"a": 3 * W[0] + 4 * W[1], "b": W[0]}


def test_gradnorm_first_step_by_hand():
    W, gn = _gradnorm_setup()
    opt = torch.optim.SGD([W], lr=0.0)
    opt.add_param_group({"params": list(gn.parameters()), "weight_decay": 0.0, "lr": 0.1})
    total, ws = gn(_gn_losses(W), [W])
    assert ws == {"a": 1.0, "b": 1.0}
    assert total.item() == pytest.approx(7 + 1)  # GradNorm term adds exactly 0
    total.backward()
    # network gradient = w_a grad L_a + w_b grad L_b, no second-order leak
    assert W.grad.tolist() == pytest.approx([4.0, 4.0])
    # r = 1 at step 0; G = (5, 1), mean 3, target (3, 3);
    # d/dw sum|w n - 3| = sign(G - 3) * n = (+5, -1)
    assert gn.task_weights.grad.tolist() == pytest.approx([5.0, -1.0])
    assert gn.last_gradnorm_loss == pytest.approx(4.0)
    assert gn.initial_losses.tolist() == pytest.approx([7.0, 1.0])
    opt.step()
    gn.after_step()
    # (0.5, 1.1) renormalised to sum 2
    assert gn.task_weights.tolist() == pytest.approx([0.5 * 2 / 1.6, 1.1 * 2 / 1.6])
    assert gn.task_weights.sum().item() == pytest.approx(2.0)


def test_gradnorm_second_step_uses_training_rates():
    W, gn = _gradnorm_setup(alpha=1.5)
    gn(_gn_losses(W), [W])  # records L(0) = (7, 1)
    with torch.no_grad():
        gn.task_weights.copy_(torch.tensor([0.625, 1.375]))
        W.copy_(torch.tensor([2.0, 1.0]))  # L = (10, 2)
    gn.task_weights.grad = None
    total, ws = gn(_gn_losses(W), [W])
    assert total.item() == pytest.approx(0.625 * 10 + 1.375 * 2)
    total.backward()
    ratio = [10 / 7, 2 / 1]
    r = [x / (sum(ratio) / 2) for x in ratio]
    G = [0.625 * 5, 1.375 * 1]
    target = [(sum(G) / 2) * ri**1.5 for ri in r]
    expect = [math.copysign(n, g - tg) for n, g, tg in zip([5, 1], G, target)]
    assert gn.task_weights.grad.tolist() == pytest.approx(expect)
    assert gn.last_gradnorm_loss == pytest.approx(sum(abs(g - tg) for g, tg in zip(G, target)), rel=1e-6)


def test_gradnorm_subset_eval_and_state():
    W, gn = _gradnorm_setup()
    total, _ = gn({"a": _gn_losses(W)["a"]}, [W])
    total.backward()
    assert gn.task_weights.grad is None  # subset: weights used, not updated
    assert torch.isnan(gn.initial_losses).all()
    gn.eval()
    total, _ = gn(_gn_losses(W))  # no shared params needed outside training
    gn.train()
    with pytest.raises(ValueError, match="shared_params"):
        gn(_gn_losses(W))
    gn(_gn_losses(W), [W])
    with torch.no_grad():
        gn.task_weights.copy_(torch.tensor([1.5, 0.5]))
    gn2 = build_weighting("gradnorm", ["a", "b"])
    gn2.load_state_dict(gn.state_dict())
    assert gn2.task_weights.tolist() == [1.5, 0.5]
    assert gn2.initial_losses.tolist() == [7.0, 1.0]


def test_gradnorm_static_init():
    gn = build_weighting("gradnorm", ["a", "b", "c"], {"a": 2.0, "b": 1.0, "c": 1.0})
    assert gn.task_weights.tolist() == pytest.approx([1.5, 0.75, 0.75])
    gn = build_weighting("gradnorm", ["a", "b"], {"a": 2.0}, init="ones")
    assert gn.task_weights.tolist() == [1.0, 1.0]


def test_uncertainty_state_roundtrip():
    w = build_weighting("uncertainty", ["a", "b"], form="liebel")
    with torch.no_grad():
        w.log_vars.copy_(torch.tensor([0.3, -0.7]))
    w2 = build_weighting("uncertainty", ["a", "b"], form="liebel")
    w2.load_state_dict(w.state_dict())
    assert torch.equal(w2.log_vars, w.log_vars)
    assert w2({"a": L(1)})[1] == w({"a": L(1)})[1]


# ---------------------------------------------------------------- backward(losses, model)


class _Shared(torch.nn.Module):
    """Stands for a model: W is its last shared layer."""

    def __init__(self):
        super().__init__()
        self.W = torch.nn.Parameter(torch.tensor([1.0, 1.0]))

    def gradnorm_parameters(self):
        return [self.W]


def test_default_backward_is_the_weighted_sum_backpropagated():
    m = _Shared()
    w = build_weighting("fixed", ["a", "b"], {"a": 2.0})
    assert w.requires_all_tasks is False
    total, ws = w.backward(_gn_losses(m.W), m)
    assert total.item() == pytest.approx(2 * 7 + 1) and ws == {"a": 2.0, "b": 1.0}
    # d/dW (2 (3 W0 + 4 W1) + W0) = (7, 8)
    assert m.W.grad.tolist() == pytest.approx([7.0, 8.0])


def test_gradnorm_backward_reads_the_models_shared_layer():
    """backward(losses, model) == forward with model.gradnorm_parameters(), then backward (the by-hand case above)."""
    m = _Shared()
    gn = build_weighting("gradnorm", ["a", "b"])
    assert gn.requires_all_tasks is True
    total, ws = gn.backward(_gn_losses(m.W), m)
    assert total.item() == pytest.approx(8.0) and ws == {"a": 1.0, "b": 1.0}
    assert m.W.grad.tolist() == pytest.approx([4.0, 4.0])
    assert gn.task_weights.grad.tolist() == pytest.approx([5.0, -1.0])


def test_trainer_refuses_one_task_per_step_sampling_for_gradient_methods():
    from tsn.config import load_config
    from tsn.engine.trainer import Trainer

    tiny = {"data": {"name": "synthetic", "tasks": ["edge", "semseg"], "size": 32,
                     "options": {"length": {"train": 4, "val": 2, "test": 2}}},
            "model": {"encoder_width": 8, "skip_widths": [8, 8, 8, 16, 16], "up_widths": [16, 16, 8, 8, 8],
                      "code": {"dim": 12}, "embedding": {"n_fc": 2}},
            "train": {"batch_size": 2}, "loss": {"weighting": "gradnorm"}}
    for sampling in ("paper", "random"):
        tiny["train"]["sampling"] = sampling
        with pytest.raises(ConfigError, match=f"train.sampling '{sampling}' trains one task per step; use train.sampling=all"):
            Trainer(load_config(data=tiny), None, quiet=True)
    tiny["train"]["sampling"] = "all"
    Trainer(load_config(data=tiny), None, quiet=True)
