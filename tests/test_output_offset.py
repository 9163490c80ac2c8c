"""model.output_offset: a fixed constant on a task's output (depth in metres
starts near its mean). Every model adds exactly the constant to that task's
outputs and auxiliary predictions, nothing else changes, bad values are one line."""

from __future__ import annotations

import pytest
import torch

from tsn.config import ModelConfig, from_dict, load_config
from tsn.errors import ConfigError
from tsn.models import build_model, list_models
from tsn.models.heads import TaskHeads
from tsn.validate import check_config

TASKS = {"semseg": 5, "normals": 3, "depth": 1}
SMALL = dict(encoder_width=8, skip_widths=[8, 8, 16, 16, 32], up_widths=[32, 16, 16, 8, 8],
             options={"tsn": {"code": {"dim": 12}, "embedding": {"n_fc": 2}}})


def test_heads_add_the_constant_after_pooling_by_hand():
    heads = TaskHeads("mean", {"a": 2, "d": 1}, 4, output_offset={"d": 4.0})
    y = torch.arange(8.0).view(1, 4, 1, 2)  # channels 0..3, values (0,1), (2,3), (4,5), (6,7)
    assert torch.equal(heads(y, "d"), torch.tensor([[[[7.0, 8.0]]]]))  # mean of the 4 channels (3, 4) + 4
    assert torch.equal(heads(y, "a"), torch.tensor([[[[1.0, 2.0]], [[5.0, 6.0]]]]))  # no offset: pooled only


@pytest.mark.parametrize("name", sorted(set(list_models()) - {"rcm"}))
def test_every_model_shifts_only_the_offset_task(name):
    torch.manual_seed(0)
    plain = build_model(from_dict(ModelConfig, {**SMALL, "name": name}), TASKS)
    torch.manual_seed(0)
    shifted = build_model(from_dict(ModelConfig, {**SMALL, "name": name, "output_offset": {"depth": 4.0}}), TASKS)
    assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in shifted.parameters())
    shifted.load_state_dict(plain.state_dict())  # the same weights: the offset is not state
    x = torch.randn(2, 3, 32, 32)
    for mode in ("eval", "train"):
        getattr(plain, mode)(), getattr(shifted, mode)()
        torch.manual_seed(1)
        a = plain(x)
        torch.manual_seed(1)
        b = shifted(x)
        assert set(a) == set(b)
        for k in a:  # final and auxiliary ("depth@...") predictions alike
            want = a[k] + 4.0 if k.split("@")[0] == "depth" else a[k]
            torch.testing.assert_close(b[k], want, rtol=1e-5, atol=1e-5)


def test_offsets_are_checked_in_one_line():
    base = "configs/synthetic/single_task.yaml"
    check_config(load_config(base, ["model.output_offset={depth: 4.0}"]))
    with pytest.raises(ConfigError, match=r"^model.output_offset: unknown task 'deph'; valid: .*depth"):
        check_config(load_config(base, ["model.output_offset={deph: 4.0}"]))
    with pytest.raises(ConfigError, match=r"model.output_offset.depth: expected float, got 'x'"):
        load_config(base, ["model.output_offset={depth: x}"])
