"""Options of the task-specific IN/BN baselines studied in docs/results/collapse.md:
per-task initial affines (model.norm_init_std) and their own rate (optim.norm_lr)."""

import torch

from tsn.config import ModelConfig, OptimConfig
from tsn.engine.optim import build_optimizer
from tsn.models.registry import build_model
from tsn.nn.norms import TaskBN, TaskIN

CH = {"semseg": 4, "depth": 1}


def _cfg(name, std=0.0):
    return ModelConfig(name=name, encoder_width=8, skip_widths=[8, 8, 8, 8, 8], up_widths=[8, 8, 8, 8, 8],
                       norm_init_std=std)


def test_default_is_the_papers_identity_affine():
    n = TaskIN(5, 3)
    assert (n.weight == 1).all() and (n.bias == 0).all()
    b = TaskBN(5, 3)
    assert all((x.weight == 1).all() and (x.bias == 0).all() for x in b.bns)


def test_spread_init_differs_per_task_with_the_given_scale():
    torch.manual_seed(0)
    n = TaskIN(2000, 2, init_std=0.1)
    assert not torch.equal(n.weight[0], n.weight[1])
    assert abs(float(n.weight.detach().mean()) - 1) < 0.01 and abs(float(n.weight.detach().std()) - 0.1) < 0.01
    assert abs(float(n.bias.detach().std()) - 0.1) < 0.01
    b = TaskBN(2000, 2, init_std=0.1)
    assert not torch.equal(b.bns[0].weight, b.bns[1].weight)


def test_model_option_reaches_every_task_norm():
    torch.manual_seed(0)
    m = build_model(_cfg("task_in", 0.2), CH)
    norms = [x for x in m.modules() if isinstance(x, TaskIN)]
    assert norms and all(not torch.equal(x.weight[0], x.weight[1]) for x in norms)
    x = torch.randn(2, 3, 32, 32)
    a = m(x, tasks=["semseg", "depth"])["semseg"]
    assert a.shape == (2, 4, 32, 32)


def test_norm_lr_puts_the_task_affines_in_their_own_group():
    m = build_model(_cfg("task_bn"), CH)
    opt = build_optimizer(OptimConfig(lr=1e-3, norm_lr=1e-2), m)
    groups = {g["name"]: g for g in opt.param_groups}
    want = {id(p) for x in m.modules() if isinstance(x, TaskBN) for p in x.parameters()}
    assert {id(p) for p in groups["task_norm"]["params"]} == want and groups["task_norm"]["lr"] == 1e-2
    assert not want & {id(p) for p in groups["decoder"]["params"]}
    n_all = sum(len(g["params"]) for g in opt.param_groups)
    assert n_all == len([p for p in m.parameters() if p.requires_grad])
    assert "task_norm" not in {g["name"] for g in build_optimizer(OptimConfig(lr=1e-3), m).param_groups}


def test_options_refused_where_there_are_no_task_norms():
    import pytest

    from tsn.errors import ConfigError

    with pytest.raises(ConfigError, match="model.norm_init_std=0.5 .* model 'tsn' has none"):
        build_model(_cfg("tsn", 0.5), CH)
    m = build_model(_cfg("multi_decoder"), CH)
    with pytest.raises(ConfigError, match="optim.norm_lr=0.01 .* MultiDecoderNet has none"):
        build_optimizer(OptimConfig(lr=1e-3, norm_lr=1e-2), m)
    build_optimizer(OptimConfig(lr=1e-3), m)  # the default (null) is accepted everywhere
