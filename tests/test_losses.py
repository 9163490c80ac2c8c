import math

import pytest
import torch

from tsn.errors import ConfigError
from tsn.losses import PAPER_WEIGHTS, MultiTaskLoss, build_loss

LOG2 = math.log(2.0)


def test_cross_entropy_hand_computed_and_ignore():
    # pixel 0: logits (0, log 3) -> p(1) = 3/4, label 1; pixel 1: label 255 (ignored)
    pred = torch.tensor([0.0, math.log(3.0)]).view(1, 2, 1, 1).repeat(1, 1, 1, 2)
    pred[0, :, 0, 1] = torch.tensor([100.0, -100.0])  # terrible, but ignored
    target = torch.tensor([[[1, 255]]])
    loss = build_loss("semseg")(pred, target)
    assert loss.item() == pytest.approx(-math.log(0.75), rel=1e-6)
    # [B,1,H,W] labels are accepted too
    assert build_loss("parts")(pred, target[:, None]).item() == pytest.approx(-math.log(0.75), rel=1e-6)


def test_balanced_bce_fixed_weight_edge():
    # 1 positive, 3 negatives, logits 0 -> every term is log 2
    pred = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    loss = build_loss("edge", pos_weight=0.95)(pred, target)
    assert loss.item() == pytest.approx((0.95 * LOG2 + 0.05 * 3 * LOG2) / 4, rel=1e-6)


def test_balanced_bce_automatic_weight_sal():
    pred = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    # w = fraction of negatives = 3/4
    loss = build_loss("sal")(pred, target)
    assert loss.item() == pytest.approx((0.75 * LOG2 + 0.25 * 3 * LOG2) / 4, rel=1e-6)


def test_balanced_bce_is_stable_and_void_pixels_do_not_count():
    pred = torch.tensor([[[[1000.0, -1000.0, 1000.0]]]], requires_grad=True)
    target = torch.tensor([[[[1.0, 0.0, 255.0]]]])
    loss = build_loss("edge")(pred, target)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    # a wrong void pixel changes nothing
    target2 = torch.tensor([[[[1.0, 0.0, 255.0]]]])
    pred2 = torch.tensor([[[[1000.0, -1000.0, -1000.0]]]])
    assert build_loss("edge")(pred2, target2).item() == pytest.approx(0.0, abs=1e-6)


def test_normals_l1_normalises_prediction():
    pred = torch.zeros(1, 3, 1, 2)
    pred[0, :, 0, 0] = torch.tensor([2.0, 0.0, 0.0])  # -> (1,0,0)
    pred[0, :, 0, 1] = torch.tensor([0.0, 0.0, 7.0])  # invalid label below
    target = torch.zeros(1, 3, 1, 2)
    target[0, :, 0, 0] = torch.tensor([0.0, 1.0, 0.0])
    loss = build_loss("normals")(pred, target)
    assert loss.item() == pytest.approx(2.0 / 3.0, rel=1e-6)


def test_depth_l1_valid_pixels():
    pred = torch.tensor([[[[2.0, 5.0, 1.5]]]])
    target = torch.tensor([[[[1.0, 0.0, 2.0]]]])
    assert build_loss("depth")(pred, target).item() == pytest.approx((1.0 + 0.5) / 2, rel=1e-6)


@pytest.mark.parametrize(
    "task,pred,target",
    [
        ("semseg", torch.randn(2, 21, 3, 3), torch.full((2, 3, 3), 255)),
        ("parts", torch.randn(2, 7, 3, 3), torch.full((2, 3, 3), 255)),
        ("edge", torch.randn(2, 1, 3, 3), torch.full((2, 1, 3, 3), 255.0)),
        ("sal", torch.randn(2, 1, 3, 3), torch.full((2, 1, 3, 3), 255.0)),
        ("normals", torch.randn(2, 3, 3, 3), torch.zeros(2, 3, 3, 3)),
        ("depth", torch.randn(2, 1, 3, 3), torch.zeros(2, 1, 3, 3)),
    ],
)
def test_no_valid_label_gives_zero_not_nan(task, pred, target):
    pred = pred.clone().requires_grad_(True)
    loss = build_loss(task)(pred, target)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.all(pred.grad == 0)


def test_unlabelled_sample_contributes_nothing():
    torch.manual_seed(0)
    pred = torch.randn(2, 21, 4, 4)
    target = torch.randint(0, 21, (2, 4, 4))
    target[1] = 255
    loss_fn = build_loss("semseg")
    assert loss_fn(pred, target).item() == pytest.approx(loss_fn(pred[:1], target[:1]).item(), rel=1e-6)
    pred = torch.randn(2, 1, 4, 4)
    target = (torch.rand(2, 1, 4, 4) > 0.5).float()
    target[1] = 255
    sal = build_loss("sal")
    assert sal(pred, target).item() == pytest.approx(sal(pred[:1], target[:1]).item(), rel=1e-6)


def test_multitask_loss_unweighted_and_missing_label():
    mtl = MultiTaskLoss(["edge", "depth"], {"edge": {"pos_weight": 0.8}})
    preds = {"edge": torch.zeros(1, 1, 2, 2, requires_grad=True), "depth": torch.ones(1, 1, 2, 2)}
    targets = {"edge": torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])}
    out = mtl(preds, targets)
    assert set(out) == {"edge", "depth"}
    assert out["edge"].item() == pytest.approx((0.8 * LOG2 + 0.2 * 3 * LOG2) / 4, rel=1e-6)
    assert out["depth"].item() == 0.0
    with pytest.raises(ConfigError):
        mtl({"semseg": torch.zeros(1, 21, 2, 2)}, {})


def test_registry_and_weights():
    with pytest.raises(ConfigError):
        build_loss("nope")
    with pytest.raises(ConfigError):
        build_loss("sal", pos_weight=0.5)
    assert PAPER_WEIGHTS["pascal"] == {"edge": 50, "semseg": 1, "parts": 2, "sal": 5, "normals": 10}
    assert PAPER_WEIGHTS["nyud"] == {"edge": 50, "semseg": 1, "normals": 10, "depth": 1}


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        build_loss("semseg")(torch.zeros(1, 21, 4, 4), torch.zeros(1, 8, 8, dtype=torch.long))


def test_half_precision_predictions_give_float32_losses():
    pred = torch.full((1, 1, 4, 4), 30.0, dtype=torch.float16)
    target = torch.zeros(1, 1, 4, 4)
    for task in ("edge", "sal", "depth"):
        loss = build_loss(task)(pred, target if task != "depth" else target + 1)
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
