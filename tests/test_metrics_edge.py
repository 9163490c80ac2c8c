"""Boundary matching, thinning and ODS/OIS/AP, against hand-computed cases."""

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from tsn.errors import ConfigError
from tsn.metrics import build_metric
from tsn.metrics import boundary as B
from tsn.metrics.edge_protocols import get_protocol

FAST = get_protocol("fast")


def _line_image(shape=(64, 64), row=30, cols=(5, 59)):
    gt = np.zeros(shape, bool)
    gt[row, cols[0] : cols[1]] = True
    return gt


def _logits(prob):
    p = torch.as_tensor(prob, dtype=torch.float64).clamp(1e-6, 1 - 1e-6)
    return torch.log(p / (1 - p)).float()[None, None]


# ---------------------------------------------------------------- matching


def test_match_one_pixel_shift_matches_far_shift_does_not():
    gt = _line_image()
    assert B.match_count(np.roll(gt, 1, axis=0), gt, radius=1.5) == gt.sum()
    assert B.match_count(np.roll(gt, 1, axis=1), gt, radius=1.5) == gt.sum()  # chain shifts by one
    assert B.match_count(np.roll(gt, 5, axis=0), gt, radius=1.5) == 0


def test_match_radius_is_inclusive_and_euclidean():
    gt = np.zeros((9, 9), bool)
    gt[4, 4] = True
    diag = np.zeros_like(gt)
    diag[5, 5] = True  # distance sqrt(2)
    assert B.match_count(diag, gt, radius=math.sqrt(2)) == 1
    assert B.match_count(diag, gt, radius=1.41) == 0
    straight = np.zeros_like(gt)
    straight[4, 6] = True  # distance exactly 2
    assert B.match_count(straight, gt, radius=2.0) == 1


def test_each_pixel_matches_at_most_once():
    gt = np.zeros((9, 9), bool)
    gt[4, 4] = True
    pred = np.zeros_like(gt)
    pred[3, 4] = pred[5, 4] = pred[4, 4] = True  # three candidates for one gt pixel
    assert B.match_count(pred, gt, radius=1.5) == 1
    pairs, cost = B.match_pixels(pred, gt, radius=1.5)
    assert pairs.tolist() == [[4, 4, 4, 4]] and cost == 0.0  # the min-cost choice


def test_matching_prefers_cardinality_then_distance():
    # g0 (0,1), g1 (0,2); p0 (0,0) reaches only g0 (r = 1.5); p1 (0,1) reaches g0 and g1.
    gt = np.zeros((3, 6), bool)
    gt[0, 1] = gt[0, 2] = True
    pred = np.zeros_like(gt)
    pred[0, 0] = pred[0, 1] = True
    pairs, cost = B.match_pixels(pred, gt, radius=1.5)
    # greedy nearest would match p1-g0 (distance 0) and leave p0 unmatched;
    # the assignment matches both: p0-g0 (1) + p1-g1 (1)
    assert len(pairs) == 2 and cost == pytest.approx(2.0)
    assert B.match_count(pred, gt, radius=1.5) == 2


def test_match_count_equals_min_cost_assignment_cardinality_on_random_maps():
    rng = np.random.default_rng(0)
    for _ in range(15):
        gt = ndimage.binary_dilation(rng.random((40, 40)) > 0.97) & (rng.random((40, 40)) > 0.3)
        pred = rng.random((40, 40)) > 0.9
        r = rng.uniform(1.0, 3.5)
        pairs, _ = B.match_pixels(pred, gt, r)
        assert len(pairs) == B.match_count(pred, gt, r)
        assert len({tuple(p[:2]) for p in pairs}) == len(pairs)  # one-to-one
        assert len({tuple(p[2:]) for p in pairs}) == len(pairs)
        assert np.all((pairs[:, 0] - pairs[:, 2]) ** 2 + (pairs[:, 1] - pairs[:, 3]) ** 2 <= r * r + 1e-9)
        assert pred[pairs[:, 0], pairs[:, 1]].all() and gt[pairs[:, 2], pairs[:, 3]].all()


def test_tolerance_is_fraction_of_diagonal():
    assert B.tolerance_px(0.0075, (300, 400)) == pytest.approx(3.75)
    assert B.tolerance_px(0.011, (480, 640)) == pytest.approx(8.8)


# ---------------------------------------------------------------- thinning / nms


def test_thin_hand_cases():
    line = np.zeros((5, 9), bool)
    line[2, 1:8] = True
    assert np.array_equal(B.thin(line), line)  # already thin: unchanged
    bar = np.zeros((7, 12), bool)
    bar[2:5, 1:11] = True  # 3-pixel-thick bar -> one row
    t = B.thin(bar)
    assert t.sum() > 0 and t.any(axis=1).sum() == 1 and t[3].sum() >= 6
    assert not B.thin(np.zeros((4, 4), bool)).any()


def test_thin_matches_scikit_image_when_available():
    skm = pytest.importorskip("skimage.morphology")
    rng = np.random.default_rng(1)
    for _ in range(20):
        x = ndimage.gaussian_filter(rng.random((50, 60)), rng.uniform(0.5, 3)) > 0.5
        assert np.array_equal(B.thin(x), skm.thin(x))


@pytest.mark.parametrize("axis", [0, 1])
def test_nms_keeps_ridge_centre(axis):
    img = np.zeros((40, 40))
    img[20, :] = 1.0
    soft = ndimage.gaussian_filter(img, 2.0)
    soft /= soft.max()
    out = B.nms((soft if axis == 0 else soft.T).astype(np.float32), matlab_sign=False)
    inner = (out if axis == 0 else out.T)[:, 8:-8]
    assert (inner[20] > 0.5).all()
    assert (np.delete(inner, 20, axis=0) < 1e-6).all()


# ---------------------------------------------------------------- summary statistics


def _bsds_maxf_reference(thresh, R, P):
    def f(r, p):
        return 2 * p * r / (p + r + ((p + r) == 0))

    bt, br, bp, bf = thresh[0], R[0], P[0], f(R[0], P[0])
    for i in range(1, len(thresh)):
        for d in np.linspace(0, 1, 100):
            t = thresh[i] * d + thresh[i - 1] * (1 - d)
            r = R[i] * d + R[i - 1] * (1 - d)
            p = P[i] * d + P[i - 1] * (1 - d)
            if f(r, p) > bf:
                bt, br, bp, bf = t, r, p, f(r, p)
    return bt, br, bp, bf


def test_ods_interpolation_matches_bsds_loop():
    rng = np.random.default_rng(2)
    th = FAST.thresholds(9)
    R = np.sort(rng.random(9))[::-1]
    P = np.sort(rng.random(9))
    ref = _bsds_maxf_reference(th, R, P)
    got = B.max_f_interp(th, R, P)
    assert got == pytest.approx(ref)


def test_summary_hand_computed():
    th = np.array([0.25, 0.5, 0.75])
    # per threshold (cntR, sumR, cntP, sumP): R = .8/.6/.2, P = .4/.75/1
    counts = np.array([[8, 10, 8, 20], [6, 10, 6, 8], [2, 10, 2, 2]])
    s = FAST.summarize(th, counts, ois=np.array([6, 10, 6, 8]))
    assert s["oisF"] == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    assert s["odsF"] >= 2 * 0.6 * 0.75 / 1.35 - 1e-12  # at least the best node
    assert s["odsF"] == pytest.approx(_bsds_maxf_reference(th, [0.8, 0.6, 0.2], [0.4, 0.75, 1.0])[3])
    # single threshold: no interpolation
    one = FAST.summarize(np.array([0.5]), counts[1:2], ois=counts[1])
    assert one["odsF"] == pytest.approx(2 * 0.6 * 0.75 / 1.35)


def test_average_precision_hand_computed():
    # R = 1, .5, 0 with P = .5, .75, 1: P on recall 0:.01:1 is piecewise linear;
    # sum over the 101 samples x 0.01 = (44.625 + 31.125) / 100
    ap = FAST.ap(np.array([1.0, 0.5, 0.0]), np.array([0.5, 0.75, 1.0]))
    assert ap == pytest.approx(0.7575)
    # recall never below .5: the curve is 0 left of it (BSDS)
    ap2 = FAST.ap(np.array([1.0, 0.5]), np.array([0.5, 0.75]))
    assert ap2 == pytest.approx(sum(0.75 - 0.25 * (i - 50) / 50 for i in range(50, 101)) * 0.01)


def test_ois_picks_each_images_best_threshold():
    # image 1 best at t0 (F=1), image 2 best at t1 (F=1)
    c1 = np.array([[4, 4, 4, 4], [1, 4, 1, 1]])
    c2 = np.array([[2, 4, 2, 8], [4, 4, 4, 4]])
    m = build_metric("edge", thresholds=[0.3, 0.6])
    m.add_image_counts([c1, c2])
    r = m.compute()
    assert r["oisF"] == pytest.approx(100.0)
    R = np.array([6 / 8, 5 / 8])
    P = np.array([6 / 12, 5 / 5])
    assert r["odsF"] == pytest.approx(100 * _bsds_maxf_reference(np.array([0.3, 0.6]), R, P)[3])


# ---------------------------------------------------------------- the metric end to end


def test_perfect_prediction_scores_perfectly():
    gt = _line_image()
    gt[10:50, 20] = True
    m = build_metric("edge")
    m.update(_logits(gt.astype(float)), torch.from_numpy(gt.astype(np.float32))[None, None])
    r = m.compute()
    assert r["odsF"] == pytest.approx(100.0) and r["oisF"] == pytest.approx(100.0)
    assert r["AP"] == pytest.approx(100.0)


def test_shifted_edges_within_and_beyond_tolerance():
    gt = np.zeros((320, 320), bool)
    gt[100, 20:300] = True
    gt[20:300, 200] = True
    tgt = torch.from_numpy(gt.astype(np.float32))[None, None]
    near = build_metric("edge", edge_max_dist=0.0075)  # 3.39 px
    near.update(_logits(np.roll(gt, 1, axis=0).astype(float) * 0.9), tgt)
    assert near.compute()["odsF"] > 99.0
    far = build_metric("edge", edge_max_dist=0.0075)
    far.update(_logits(np.roll(np.roll(gt, 20, axis=0), 20, axis=1).astype(float) * 0.9), tgt)
    assert far.compute()["odsF"] < 10.0


def test_soft_ridge_is_thinned_and_scored():
    gt = _line_image((80, 80), row=40, cols=(10, 70))
    soft = ndimage.gaussian_filter(gt.astype(float), 1.5)
    soft /= soft.max()
    m = build_metric("edge", edge_max_dist=0.0075)  # 0.85 px: needs thinning to stay precise
    m.update(_logits(soft), torch.from_numpy(gt.astype(np.float32))[None, None])
    assert m.compute()["odsF"] > 95.0
    unthinned = build_metric("edge", edge_max_dist=0.0075, thin=False, thresholds=[0.1])
    unthinned.update(_logits(soft), torch.from_numpy(gt.astype(np.float32))[None, None])
    assert unthinned.compute()["odsP"] < 60.0


def test_void_pixels_do_not_count():
    gt = _line_image()
    pred = gt.copy()
    pred[5:15, 40] = True  # false positives ...
    tgt = gt.astype(np.float32)
    tgt[5:15, 40] = 255.0  # ... on void pixels
    m = build_metric("edge", thresholds=[0.5])
    m.update(_logits(pred.astype(float)), torch.from_numpy(tgt)[None, None])
    assert m.compute()["odsF"] == pytest.approx(100.0)
    empty = build_metric("edge")
    empty.update(torch.zeros(1, 1, 8, 8), torch.full((1, 1, 8, 8), 255.0))
    assert int(empty.state()["images"]) == 0


def _random_batch(n=4, size=48, seed=0):
    rng = np.random.default_rng(seed)
    gts, probs = [], []
    for _ in range(n):
        g = np.zeros((size, size), bool)
        g[rng.integers(5, size - 5), 3:-3] = True
        g[3:-3, rng.integers(5, size - 5)] = True
        p = ndimage.gaussian_filter(np.roll(g, rng.integers(-2, 3), axis=0).astype(float), 1.2)
        p = p / p.max() * 0.9 + 0.1 * rng.random((size, size))
        gts.append(g)
        probs.append(p)
    logits = torch.cat([_logits(p) for p in probs])
    tgt = torch.from_numpy(np.stack(gts).astype(np.float32))[:, None]
    return logits, tgt


def test_merge_two_halves_equals_whole():
    logits, tgt = _random_batch()
    whole, a, b = (build_metric("edge", thresholds=19) for _ in range(3))
    whole.update(logits, tgt)
    a.update(logits[:1], tgt[:1])
    b.update(logits[1:], tgt[1:])
    a.merge(b)
    assert a.compute() == pytest.approx(whole.compute())
    for k in ("counts", "ois", "images"):
        assert torch.equal(a.state()[k], whole.state()[k])
    with pytest.raises(ValueError):
        whole.merge(build_metric("edge", thresholds=9))


def test_threshold_subset_and_options():
    logits, tgt = _random_batch(n=2)
    full = build_metric("edge", thresholds=99)
    sub = build_metric("edge", thresholds=[0.2, 0.4, 0.6, 0.8])
    full.update(logits, tgt)
    sub.update(logits, tgt)
    counts_full = full.state()["counts"].numpy()
    idx = [int(round(t * 100)) - 1 for t in (0.2, 0.4, 0.6, 0.8)]
    assert np.array_equal(sub.state()["counts"].numpy(), counts_full[idx])
    with pytest.raises(ConfigError):
        build_metric("edge", thresholds=[0.5, 0.2])
    with pytest.raises(ConfigError):
        build_metric("edge", edge_max_dist=0)


def test_workers_give_the_same_counts():
    logits, tgt = _random_batch(n=3, seed=4)
    serial, par = build_metric("edge", thresholds=9), build_metric("edge", thresholds=9, workers=2)
    serial.update(logits, tgt)
    par.update(logits, tgt)
    par.close()
    assert torch.equal(serial.state()["counts"], par.state()["counts"])
