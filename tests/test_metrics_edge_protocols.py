"""Edge protocols (seism, bsds, fast) against hand-computed cases."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from tsn.errors import ConfigError
from tsn.metrics import boundary as B
from tsn.metrics import build_metric
from tsn.metrics import edge_protocols as EP

SEISM, BSDS, FAST = (EP.get_protocol(n) for n in ("seism", "bsds", "fast"))


# ---------------------------------------------------------------- ground truth


def test_seg2bmap_hand_cases():
    seg = np.array([[1, 1, 2], [1, 1, 2], [3, 3, 3]])
    # east / south / south-east differences; last row east only, last column south only, corner never
    assert B.seg2bmap(seg).astype(int).tolist() == [[0, 1, 0], [1, 1, 1], [0, 0, 0]]
    one = np.zeros((3, 3), int)
    one[1, 1] = 7  # the boundary lies on the pixels towards the origin
    assert B.seg2bmap(one).astype(int).tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 0]]
    assert not B.seg2bmap(np.full((4, 5), 3)).any()
    # zero outside the image does not make a boundary on the last row / column
    assert not B.seg2bmap(np.zeros((2, 2), int)).any()


def test_seism_ground_truth_is_thin_seg2bmap():
    seg = np.zeros((12, 12), int)
    seg[3:9, 3:9] = 1
    b = B.seg2bmap(seg)
    assert np.array_equal(B.thin(B.seg2bmap(seg)), B.thin(b))
    # the 6x6 square's outline shifted half a pixel towards the origin: rows / columns 2 and 8
    ys, xs = np.nonzero(b)
    assert b.sum() == 24 and (ys.min(), ys.max(), xs.min(), xs.max()) == (2, 8, 2, 8)
    assert B.thin(B.seg2bmap(seg)).sum() == 24 - 4  # thinning drops the four corners (8-connected)


# ---------------------------------------------------------------- soft map, NMS


def test_to_uint8_truncates():
    assert EP.to_uint8(np.array([0.0, 0.999, 1 / 255 - 1e-9, 0.5, 1.0, 1.5])).tolist() == [0, 254, 0, 127, 255, 255]


def _ridge(angle_deg, size=49, sigma=1.5):
    yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2
    a = np.deg2rad(angle_deg)
    d = -xx * np.sin(a) + yy * np.cos(a)  # distance from the line through the centre at this angle
    return np.exp(-(d**2) / (2 * sigma**2)), d


def test_nms_orientation_keeps_the_ridge_centre_across_its_normal():
    for angle in (90, 45, 135, 30):
        soft, d = _ridge(angle)
        E = SEISM.soft_map(EP.to_uint8(soft))
        inner = np.zeros_like(d, bool)
        inner[8:-8, 8:-8] = True
        kept = (E > 0) & inner
        assert kept.any()
        assert np.abs(d[kept]).max() <= 1.0, angle  # only pixels within a pixel of the centre line survive
        # along the ridge nothing is suppressed: every inner centre pixel survives
        centre = (np.abs(d) < 0.5) & inner
        assert (E[centre] > 0).mean() > 0.9


def test_nms_sign_zero_is_matlabs():
    # a horizontal ridge: Oxy == 0 exactly, MATLAB's sign(0) = 0 gives orientation 0, so the map is
    # compared with its left / right neighbours (equal) and nothing of the blurred ridge is suppressed
    soft, _ = _ridge(0)
    u8 = EP.to_uint8(soft)
    O = B.orientation(u8.astype(np.float32) / np.float32(255))
    assert np.all(O[10:-10, 10:-10] == 0)
    E = SEISM.soft_map(u8)
    assert np.array_equal(E[10:-10, 10:-10] > 0, u8[10:-10, 10:-10] > 0)
    # the fast preset's NMS (sign(0) = +1) thins it to the centre row
    f = B.nms(soft, matlab_sign=False)
    assert (f[10:-10, 10:-10] > 1e-3).any(axis=1).sum() == 1


def test_nms_border_ramp():
    E = np.full((20, 30), 200, np.uint8)
    out = SEISM.soft_map(E)
    v = np.float32(200) / np.float32(255)
    assert out[0].max() == 0 and out[:, 0].max() == 0  # ramp 0/5 on the first row and column
    assert out[10, 2] == pytest.approx(v * 0.4) and out[2, 15] == pytest.approx(v * 0.4)
    assert out[10, 15] == v


# ---------------------------------------------------------------- thresholds


def test_threshold_sets():
    hed = SEISM.thresholds("hed")
    assert hed.size == 101 and hed[0] == 0.001 and hed[1] == 0.01 and hed[50] == 0.5 and hed[-1] == 0.999
    assert np.array_equal(SEISM.thresholds(None), hed)
    b = BSDS.thresholds(None)
    assert b.size == 99 and b[0] == pytest.approx(0.01) and b[-1] == pytest.approx(0.99)
    assert np.allclose(B.matlab_linspace(0.01, 0.99, 99), np.linspace(0.01, 0.99, 99), atol=1e-15)
    with pytest.raises(ConfigError):
        SEISM.thresholds("hd")
    with pytest.raises(ConfigError):
        EP.get_protocol("matlab")


def test_strict_threshold_seism_and_inclusive_bsds():
    gt = np.zeros((30, 30), bool)
    gt[15, 8:22] = True
    png = np.where(gt, np.uint8(51), np.uint8(0))  # 51 / 255 == 0.2 exactly
    th = np.array([0.19, 0.2, 0.21])
    s = SEISM.image_counts(png, gt, th, radius=1.0)
    b = BSDS.image_counts(png, gt, th, radius=1.0)
    assert s[:, 3].tolist() == [14, 0, 0]  # > 0.2 leaves the value 0.2 out
    assert b[:, 3].tolist() == [14, 14, 0]  # >= 0.2 keeps it
    assert s[0, 0] == 14 and b[1, 0] == 14


def test_multi_annotator_counts_as_boundary_bench():
    pred = np.zeros((20, 20), np.uint8)
    for y, x in ((5, 5), (5, 10), (15, 15), (0, 19)):
        pred[y, x] = 255
    g1 = np.zeros((20, 20), bool)
    g1[5, 5] = g1[15, 15] = True
    g2 = np.zeros((20, 20), bool)
    g2[5, 11] = g2[15, 15] = True
    g2[10, 2] = True  # missed by everyone
    c = BSDS.image_counts(pred, [g1, g2], np.array([0.5]), radius=1.5)
    # cntR: 2 (annotator 1) + 2 (annotator 2); sumR: 2 + 3; cntP: predicted pixels matched to any
    # annotator = {(5,5), (5,10), (15,15)}; sumP: 4
    assert c.tolist() == [[4, 5, 3, 4]]


def test_metric_takes_annotators_as_channels_and_drops_padding():
    """A label [B, K, H, W] holds K annotators; a channel void everywhere pads the stack."""
    soft, gt = _scene(3)
    g2 = np.roll(gt, 2, axis=1)
    pad = np.full_like(gt, 255, dtype=np.float32)
    target = torch.from_numpy(np.stack([gt, g2, pad]).astype(np.float32))[None]
    m = build_metric("edge", protocol="bsds", edge_max_dist=0.0075)
    m.update(_logits(soft), target)
    p = torch.sigmoid(_logits(soft)).numpy()[0, 0]
    ref = BSDS.image_counts(p, [gt, g2], m.thresholds, max_dist=0.0075)
    assert np.array_equal(m.state()["counts"].numpy(), ref)
    assert ref[0, 1] == gt.sum() + g2.sum()  # sumR sums over both annotators, none from the padding


def test_a_protocol_is_one_registered_object():
    """Adding a protocol is one instance: a variant of bsds with SEISM's strict comparison is
    usable by the metric by name, and nothing else needed to know it."""
    import dataclasses

    name = "bsds_strict_test"
    if name not in EP.PROTOCOLS:
        EP.PROTOCOLS.register(name)(dataclasses.replace(BSDS, name=name, strict=True))
    png = np.zeros((10, 10), np.uint8)
    png[5, 2:8] = 51
    gt = png > 0
    m = build_metric("edge", protocol=name, thresholds=[0.2], edge_max_dist_px=1.0)
    m.add_image_counts([EP.get_protocol(name).image_counts(png, gt, m.thresholds, radius=1.0)])
    assert m.state()["counts"].numpy()[0, 3] == 0  # strict: 0.2 > 0.2 is false
    with pytest.raises(ConfigError, match="valid: .*bsds.*fast.*seism"):
        EP.get_protocol("nope")


# ---------------------------------------------------------------- summaries


def test_seism_ois_takes_the_first_of_equal_maxima():
    a = np.array([[3, 6, 3, 6], [2, 6, 2, 2]])  # F = 0.5 at both thresholds
    assert SEISM.ois(a).tolist() == [3, 6, 3, 6]
    assert BSDS.ois(a).tolist() == [3, 6, 3, 6]  # collect_eval_bdry's ff(1)
    assert FAST.ois(a).tolist() == [2, 6, 2, 2]  # the fast preset keeps the last
    b = np.array([[1, 2, 1, 10], [1, 2, 1, 1]])
    m = build_metric("edge", protocol="seism", thresholds=[0.3, 0.6])
    m.add_image_counts([a, b])
    # OIS counts [3,6,3,6] + [1,2,1,1] = [4,8,4,7]: R = 1/2, P = 4/7
    assert m.compute()["oisF"] == pytest.approx(100 * 2 * 0.5 * (4 / 7) / (0.5 + 4 / 7))


def test_seism_ods_is_the_plain_maximum():
    th = np.array([0.25, 0.5, 0.75])
    counts = np.array([[8, 10, 8, 20], [6, 10, 6, 8], [2, 10, 2, 2]])  # R .8/.6/.2, P .4/.75/1
    s = SEISM.summarize(th, counts, counts[1])
    assert s["odsF"] == pytest.approx(2 * 0.6 * 0.75 / 1.35) and s["odsT"] == 0.5
    assert s["oisF"] == pytest.approx(BSDS.summarize(th, counts, counts[1])["oisF"])
    # (R, P) = (1, .2) and (.2, 1): F 1/3 at both thresholds, 0.6 half-way (BSDS's interpolation)
    two = np.array([[10, 10, 10, 50], [2, 10, 2, 2]])
    assert SEISM.summarize(th[:2], two, two[0])["odsF"] == pytest.approx(1 / 3)
    assert BSDS.summarize(th[:2], two, two[0])["odsF"] == pytest.approx(0.6, abs=1e-4)


def test_seism_ap_and_its_special_cases():
    # R 1, .5, 0 with P .5, .75, 1 (as the BSDS hand case)
    assert SEISM.ap(np.array([1.0, 0.5, 0.0]), np.array([0.5, 0.75, 1.0])) == pytest.approx(0.7575)
    # repeated recall: unique keeps the FIRST occurrence (P .6): sum of 1 - .8 r over r = 0..0.5
    assert SEISM.ap(np.array([0.5, 0.5, 0.0]), np.array([0.6, 0.8, 1.0])) == pytest.approx(0.408)
    assert SEISM.ap(np.array([0.5, 0.5]), np.array([0.6, 0.8])) == 0.0  # one distinct recall
    # gather_measure: no predicted pixel at a threshold -> R 0, P 1 (not 0)
    R, P = EP.seism_recall_precision(np.array([[5, 10, 5, 10], [0, 10, 0, 0]]))
    assert R.tolist() == [0.5, 0.0] and P.tolist() == [0.5, 1.0]
    # eval_cont per image: no prediction -> F 0
    assert EP.seism_image_f(np.array([[0, 10, 0, 0], [2, 10, 2, 4]])).tolist()[0] == 0.0


# ---------------------------------------------------------------- the metric end to end


def _logits(prob):
    p = torch.as_tensor(prob, dtype=torch.float64).clamp(1e-6, 1 - 1e-6)
    return torch.log(p / (1 - p)).float()[None, None]


def _scene(seed=0, size=(60, 80)):
    rng = np.random.default_rng(seed)
    lab = np.zeros(size, int)
    lab[:, size[1] // 2 :] = 1
    lab[size[0] // 3 :, :] += 2
    gt = B.thin(B.seg2bmap(lab))
    soft = ndimage.gaussian_filter(np.roll(gt, 1, axis=0).astype(float), 1.2)
    soft = soft / soft.max() * 0.9 + 0.05 * rng.random(size)
    return soft, gt


def test_perfect_prediction_under_every_protocol():
    _, gt = _scene()
    inner = np.zeros_like(gt)
    inner[8:-8, 8:-8] = gt[8:-8, 8:-8]  # away from the NMS border ramp
    for name in ("seism", "bsds", "fast"):
        m = build_metric("edge", protocol=name)
        m.update(_logits(inner.astype(float)), torch.from_numpy(inner.astype(np.float32))[None, None])
        r = m.compute()
        assert r["odsF"] == pytest.approx(100.0) and r["oisF"] == pytest.approx(100.0), name


def test_metric_equals_image_counts_of_the_8bit_map():
    soft, gt = _scene(1)
    m = build_metric("edge", protocol="seism", edge_max_dist=0.0075)
    m.update(_logits(soft), torch.from_numpy(gt.astype(np.float32))[None, None])
    p = torch.sigmoid(_logits(soft)).numpy()[0, 0]
    ref = SEISM.image_counts(EP.to_uint8(p), gt, EP.HED_THRESHOLDS, max_dist=0.0075)
    assert np.array_equal(m.state()["counts"].numpy(), ref)
    assert len(m.thresholds) == 101
    # an explicit tolerance in pixels: the same as max_dist x this map's diagonal
    px = build_metric("edge", protocol="seism", edge_max_dist_px=0.0075 * np.hypot(*gt.shape))
    px.update(_logits(soft), torch.from_numpy(gt.astype(np.float32))[None, None])
    assert torch.equal(px.state()["counts"], m.state()["counts"])


def test_fast_preset_counts_unchanged_by_the_engine():
    soft, gt = _scene(2)
    th = FAST.thresholds(19)
    got = FAST.image_counts(soft, gt, th, max_dist=0.011)
    # the engine (sorted prefixes, warm-started matchings) against matching every threshold from scratch
    r = B.tolerance_px(0.011, gt.shape)
    for i, t in enumerate(th):
        bm = B.thin(soft >= t)
        assert got[i, 0] == B.match_count(bm, gt, r) and got[i, 3] == bm.sum()


def test_protocols_do_not_merge():
    a, b = build_metric("edge", protocol="seism"), build_metric("edge", protocol="bsds", thresholds="hed")
    with pytest.raises(ValueError):
        a.merge(b)


def test_configs_default_to_seism_and_validation_stays_fast():
    from pathlib import Path

    from eval.run import edge_protocol
    from tsn.config import load_config
    from tsn.data import dataset_info
    from tsn.tasks import get_task

    root = Path(__file__).resolve().parents[1]
    for name, md in (("pascal", 0.0075), ("nyud", 0.011)):
        cfg = load_config(str(root / "configs" / name / "base.yaml"))
        assert edge_protocol(cfg) == "seism"
        opts = cfg.eval.options.get("edge")
        final = get_task("edge").metric_kwargs(opts, dataset_info(name))
        val = get_task("edge").metric_kwargs(opts, dataset_info(name), validation=True)
        assert final["protocol"] == "seism" and final["edge_max_dist"] == md
        assert val["protocol"] == "fast" and val["thresholds"] == 9
        assert len(build_metric("edge", **final).thresholds) == 101
    # the old flat key is an alias
    cfg = load_config(data={"eval": {"edge_protocol": "bsds"}})
    assert cfg.eval.options["edge"]["protocol"] == "bsds"


def test_release_geometry_values_reach_seism_as_the_stored_png():
    from tsn.engine.geometry import quant_logits

    k = np.arange(256)
    p = torch.sigmoid(quant_logits()[torch.from_numpy(k)].float()).numpy()
    assert np.array_equal(EP.to_uint8(p), k.astype(np.uint8))  # what the metric's seism path computes


def test_bsds_nms_is_the_bench_after_rcfs_nms():
    """bsds_nms = the map stored as 8 bits, RCF's edgesNms (r = 2), stored again, then bsds."""
    soft, d = _ridge(45, sigma=2.5)
    P = EP.get_protocol("bsds_nms")
    E = P.soft_map(soft)
    inner = np.zeros_like(d, bool)
    inner[8:-8, 8:-8] = True
    assert np.abs(d[(E > 0.1) & inner]).max() <= 1.0  # the blurred ridge is thinned to its centre
    assert np.array_equal(np.round(E * 255), E * 255)  # stored as 8 bits after NMS
    ref = B.nms(EP.im2uint8(soft).astype(np.float32) / np.float32(255), r=2)
    assert np.array_equal(E, EP.im2uint8(ref) / 255.0)
    gt = np.abs(d) < 0.5
    c = P.image_counts(soft, gt, P.thresholds(9), radius=2.0)
    assert np.array_equal(c, EP.get_protocol("bsds").image_counts(E, gt, P.thresholds(9), radius=2.0))
