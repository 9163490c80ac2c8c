"""Hand-computed cases and properties of the segmentation, normals, saliency and depth metrics."""

import math

import numpy as np
import pytest
import torch

from tsn.errors import ConfigError
from tsn.metrics import MultiTaskMetrics, build_metric


def logit(p):
    p = torch.as_tensor(p, dtype=torch.float64)
    return torch.log(p / (1 - p)).float()


def onehot_logits(labels, C):
    return torch.nn.functional.one_hot(labels.clamp(max=C - 1), C).permute(0, 3, 1, 2).float()


# ---------------------------------------------------------------- segmentation


def test_semseg_hand_computed():
    gt = torch.tensor([[[0, 0, 1], [1, 2, 255]]])
    pred = torch.tensor([[[0, 1, 1], [1, 2, 0]]])
    m = build_metric("semseg", num_classes=3)
    m.update(onehot_logits(pred, 3), gt)
    r = m.compute()
    # class 0: tp1 fn1 -> 1/2; class 1: tp2 fp1 -> 2/3; class 2: tp1 -> 1; the 255 pixel never counts
    assert r["IoU_0"] == pytest.approx(50.0)
    assert r["IoU_1"] == pytest.approx(200 / 3)
    assert r["IoU_2"] == pytest.approx(100.0)
    assert r["mIoU"] == pytest.approx((50 + 200 / 3 + 100) / 3)
    assert r["pixAcc"] == pytest.approx(80.0)


def test_semseg_absent_class_policy():
    gt = torch.tensor([[[0, 0, 1], [1, 2, 255]]])
    pred = torch.tensor([[[0, 1, 1], [1, 2, 0]]])
    skip = build_metric("semseg", num_classes=4)
    zero = build_metric("semseg", num_classes=4, absent_class="zero")
    for m in (skip, zero):
        m.update(pred, gt)  # integer predictions are accepted as labels
    assert skip.compute()["mIoU"] == pytest.approx((50 + 200 / 3 + 100) / 3)
    assert math.isnan(skip.compute()["IoU_3"])
    assert zero.compute()["mIoU"] == pytest.approx((50 + 200 / 3 + 100) / 4)


def test_parts_images_without_persons_do_not_count():
    torch.manual_seed(0)
    gt = torch.randint(0, 7, (2, 5, 5))
    gt[1] = 255
    logits = torch.randn(2, 7, 5, 5)
    both, first = build_metric("parts"), build_metric("parts")
    both.update(logits, gt)
    first.update(logits[:1], gt[:1])
    assert both.compute() == pytest.approx(first.compute(), nan_ok=True)
    assert both.compute()["n_images"] == 1


def test_segmentation_perfect_and_bad_labels():
    gt = torch.randint(0, 21, (2, 6, 6))
    m = build_metric("semseg")
    m.update(onehot_logits(gt, 21), gt[:, None])
    assert m.compute()["mIoU"] == pytest.approx(100.0)
    with pytest.raises(ValueError):
        m.update(onehot_logits(gt, 21), torch.full((2, 6, 6), 30))


# ---------------------------------------------------------------- normals


def _unit(angles_deg):
    a = torch.deg2rad(torch.tensor(angles_deg, dtype=torch.float64))
    return torch.stack([torch.cos(a), torch.sin(a), torch.zeros_like(a)]).float()  # [3, N]


def test_normals_hand_computed():
    gt = torch.zeros(1, 3, 1, 4)
    gt[0, 0, 0, :3] = 1.0  # (1,0,0) for three pixels, the 4th is invalid (zero)
    pred = torch.zeros(1, 3, 1, 4)
    pred[0, :, 0, 0] = torch.tensor([3.0, 0, 0])  # 0 deg (length does not matter)
    pred[0, :, 0, 1] = torch.tensor([1.0, 1, 0])  # 45 deg
    pred[0, :, 0, 2] = torch.tensor([0.0, 2, 0])  # 90 deg
    pred[0, :, 0, 3] = torch.tensor([-1.0, 0, 0])  # ignored
    m = build_metric("normals")
    m.update(pred, gt)
    r = m.compute()
    assert r["mean"] == pytest.approx(45.0, abs=1e-4)
    assert r["median"] == pytest.approx(45.0, abs=5e-4 + 1e-6)  # bin centre: within bin_deg / 2
    assert r["rmse"] == pytest.approx(math.sqrt((45**2 + 90**2) / 3), abs=1e-4)
    assert r["11.25"] == pytest.approx(100 / 3)
    assert r["22.5"] == pytest.approx(100 / 3)
    assert r["30"] == pytest.approx(100 / 3)


def test_normals_median_even_count_and_small_angles():
    gt = _unit([0, 0, 0, 0]).view(1, 3, 1, 4)
    pred = _unit([0.01, 10, 20, 40]).view(1, 3, 1, 4)
    m = build_metric("normals")
    m.update(pred, gt)
    r = m.compute()
    assert r["median"] == pytest.approx(15.0, abs=5e-4 + 1e-5)  # numpy: mean of 10 and 20
    assert r["mean"] == pytest.approx((0.01 + 10 + 20 + 40) / 4, abs=1e-4)  # atan2 keeps 0.01 deg


def test_normals_histogram_median_matches_numpy_and_merge():
    torch.manual_seed(1)
    gt = torch.nn.functional.normalize(torch.randn(4, 3, 9, 9), dim=1)
    gt[0, :, :3] = 0  # invalid
    pred = gt + 0.4 * torch.randn(4, 3, 9, 9)
    whole, a, b = build_metric("normals"), build_metric("normals"), build_metric("normals")
    whole.update(pred, gt)
    a.update(pred[:2], gt[:2])
    b.update(pred[2:], gt[2:])
    a.merge(b)
    p = torch.nn.functional.normalize(pred, dim=1).double()
    cos = (p * gt.double()).sum(1).clamp(-1, 1)
    valid = gt.abs().sum(1) > 0
    deg = torch.rad2deg(torch.acos(cos))[valid].numpy()
    r = whole.compute()
    assert r["median"] == pytest.approx(np.median(deg), abs=5e-4 + 1e-4)
    assert r["mean"] == pytest.approx(deg.mean(), abs=1e-4)
    assert r["30"] == pytest.approx(100 * np.mean(deg < 30), abs=1e-9)
    assert a.compute() == pytest.approx(r)


# ---------------------------------------------------------------- saliency


def _sal_case():
    probs = torch.tensor([[[0.95, 0.52], [0.02, 0.02]], [[0.62, 0.33], [0.01, 0.01]]])
    gt = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [0.0, 0.0]]])
    return logit(probs)[:, None], gt[:, None]


def test_saliency_hand_computed_both_conventions():
    pred, gt = _sal_case()
    m = build_metric("sal")
    m.update(pred, gt)
    r = m.compute()
    # (a) per-image P/R/IoU averaged over images; best threshold mean IoU .75, F = 2*.75*1/1.75
    assert r["mIoU_a"] == pytest.approx(75.0)
    assert r["maxF_a"] == pytest.approx(100 * 1.5 / 1.75)
    # (b) pooled, beta^2 = 0.3: best at t in {.55,.6}: P = 1, R = 2/3
    assert r["maxF_b"] == pytest.approx(100 * 1.3 * (2 / 3) / (0.3 + 2 / 3))
    assert r["mIoU_b"] == pytest.approx(75.0)
    assert r["mIoU"] == r["mIoU_a"] and r["maxF"] == r["maxF_a"]
    mb = build_metric("sal", sal_headline="b")
    mb.update(pred, gt)
    assert mb.compute()["maxF"] == pytest.approx(r["maxF_b"])


def test_saliency_void_pixels_and_perfect():
    pred, gt = _sal_case()
    gt2 = gt.clone()
    gt2[0, 0, 1, 1] = 255.0
    pred2 = pred.clone()
    pred2[0, 0, 1, 1] = 10.0  # confident false positive on a void pixel
    m1, m2 = build_metric("sal"), build_metric("sal")
    m1.update(pred, gt)
    m2.update(pred2, gt2)
    assert m2.compute() == pytest.approx(m1.compute())
    perfect = build_metric("sal")
    perfect.update(gt * 40 - 20, gt)
    r = perfect.compute()
    assert r["mIoU_a"] == pytest.approx(100) and r["maxF_a"] == pytest.approx(100)
    assert r["maxF_b"] == pytest.approx(100) and r["mIoU_b"] == pytest.approx(100)
    with pytest.raises(ConfigError):
        build_metric("sal", sal_headline="c")


def test_saliency_merge_halves():
    torch.manual_seed(2)
    pred = torch.randn(6, 1, 7, 7)
    gt = (torch.rand(6, 1, 7, 7) > 0.6).float()
    whole, a, b = build_metric("sal"), build_metric("sal"), build_metric("sal")
    whole.update(pred, gt)
    a.update(pred[:4], gt[:4])
    b.update(pred[4:], gt[4:])
    assert a.merge(b).compute() == pytest.approx(whole.compute())


# ---------------------------------------------------------------- depth


def test_depth_hand_computed():
    pred = torch.tensor([[[[2.0, 1.0, 4.0]]]])
    gt = torch.tensor([[[[1.0, 0.0, 2.0]]]])
    m = build_metric("depth")
    m.update(pred, gt)
    r = m.compute()
    assert r["rmse"] == pytest.approx(math.sqrt(5 / 2))
    assert r["log_rmse"] == pytest.approx(math.log(2))
    assert r["abs_rel"] == pytest.approx(1.0)
    assert r["clamped"] == 0.0


def test_depth_counts_the_clamped_predictions_that_decide_log_rmse():
    # valid pixels: 4 (label 0 is invalid); predictions -1 and 0 are clamped to 1e-9 m
    pred = torch.tensor([[[[-1.0, 0.0, 2.0, 1.0, 5.0]]]])
    gt = torch.tensor([[[[1.0, 1.0, 1.0, 1.0, 0.0]]]])
    m = build_metric("depth")
    m.update(pred, gt)
    r = m.compute()
    assert r["clamped"] == pytest.approx(50.0)
    assert r["log_rmse"] == pytest.approx(math.sqrt((2 * math.log(1e-9) ** 2 + math.log(2) ** 2) / 4))


def test_depth_is_pooled_over_pixels_not_images():
    # image 1: one pixel, error 1; image 2: three pixels, error 3 -> sqrt((1 + 27) / 4)
    pred = torch.tensor([[[[2.0, 1.0, 1.0, 1.0]]], [[[4.0, 4.0, 4.0, 1.0]]]])
    gt = torch.tensor([[[[1.0, 0.0, 0.0, 0.0]]], [[[1.0, 1.0, 1.0, 0.0]]]])
    m = build_metric("depth")
    m.update(pred, gt)
    assert m.compute()["rmse"] == pytest.approx(math.sqrt(7))
    a, b = build_metric("depth"), build_metric("depth")
    a.update(pred[:1], gt[:1])
    b.update(pred[1:], gt[1:])
    assert a.merge(b).compute() == pytest.approx(m.compute())


# ---------------------------------------------------------------- shared machinery


def test_multitask_metrics_state_merge_and_options():
    torch.manual_seed(3)
    tasks = ["semseg", "depth"]
    preds = {"semseg": torch.randn(4, 21, 5, 5), "depth": torch.rand(4, 1, 5, 5) + 0.5}
    tgts = {"semseg": torch.randint(0, 21, (4, 5, 5)), "depth": torch.rand(4, 1, 5, 5)}
    whole = MultiTaskMetrics(tasks, num_classes={"semseg": 21})
    whole.update(preds, tgts)
    a, b = MultiTaskMetrics(tasks), MultiTaskMetrics(tasks)
    a.update({k: v[:1] for k, v in preds.items()}, {k: v[:1] for k, v in tgts.items()})
    b.update({k: v[1:] for k, v in preds.items()}, {k: v[1:] for k, v in tgts.items()})
    a.merge(b)
    a.all_reduce()  # no process group: a no-op
    for t in tasks:
        assert a.compute()[t] == pytest.approx(whole.compute()[t], nan_ok=True)
    c = MultiTaskMetrics(tasks)
    c.load_state(whole.state())
    for t in tasks:
        assert c.compute()[t] == pytest.approx(whole.compute()[t], nan_ok=True)
    whole.reset()
    assert math.isnan(whole.compute()["depth"]["rmse"])
    with pytest.raises(ConfigError):
        MultiTaskMetrics(tasks, bogus=1)
    with pytest.raises(ValueError):
        build_metric("semseg", num_classes=21).merge(build_metric("semseg", num_classes=7))


def test_all_reduce_in_a_one_process_group(tmp_path):
    import torch.distributed as dist

    if not dist.is_available() or dist.is_initialized():
        pytest.skip("torch.distributed unavailable or already initialised")
    m = build_metric("depth")
    m.update(torch.tensor([[[[2.0, 3.0]]]]), torch.tensor([[[[1.0, 1.0]]]]))
    before = m.compute()
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        m.all_reduce()
    finally:
        dist.destroy_process_group()
    assert m.compute() == pytest.approx(before)
