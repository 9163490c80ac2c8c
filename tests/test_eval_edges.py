"""python -m eval edges: fixtures in the exact formats (BSDS500 groundTruth cell, PASCAL-Context LabelMap, PNG)."""

import json

import numpy as np
import pytest
import scipy.io
from PIL import Image
from scipy import ndimage

from eval.__main__ import main as eval_main
from tsn.metrics import build_metric
from tsn.metrics import boundary as B
from tsn.metrics import edge_protocols as EP


def _labels(seed, shape=(40, 56)):
    rng = np.random.default_rng(seed)
    lab = np.zeros(shape, np.uint16)
    lab[:, rng.integers(15, 40) :] = 1
    lab[rng.integers(12, 28) :, :] += 2
    return lab


def _soft(gt, seed):
    rng = np.random.default_rng(seed)
    s = ndimage.gaussian_filter(np.roll(gt, 1, axis=1).astype(float), 1.0)
    s = s / s.max() * 0.95 + 0.04 * rng.random(gt.shape)
    return EP.to_uint8(s)


def _save_bsds_gt(path, annotators):
    """A BSDS500 groundTruth .mat: a 1 x n cell of structs with Segmentation and Boundaries."""
    cell = np.empty((1, len(annotators)), dtype=object)
    for i, seg in enumerate(annotators):
        cell[0, i] = {"Segmentation": seg.astype(np.uint16), "Boundaries": B.seg2bmap(seg).astype(np.uint8)}
    scipy.io.savemat(path, {"groundTruth": cell})


def _run(capsys, *argv):
    rc = eval_main(["edges", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture
def bsds_folder(tmp_path):
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    for k, ident in enumerate(["100007", "100039"]):
        a, b = _labels(k), _labels(k + 10)
        _save_bsds_gt(gt / f"{ident}.mat", [a, b])
        Image.fromarray(_soft(B.seg2bmap(a), k)).save(pred / f"{ident}.png")
    return pred, gt


def test_bsds_cell_two_annotators_equals_direct_computation(bsds_folder, capsys):
    pred, gt = bsds_folder
    rc, out, _ = _run(capsys, pred, "--gt", gt, "--protocol", "bsds", "--json")
    assert rc == 0
    res = json.loads(out)
    assert res["images"] == 2 and {"odsF", "oisF", "AP"} <= set(res)
    m = build_metric("edge", protocol="bsds", edge_max_dist=0.0075)
    for k, ident in enumerate(["100007", "100039"]):
        gts = [B.seg2bmap(_labels(k)), B.seg2bmap(_labels(k + 10))]
        p = np.array(Image.open(pred / f"{ident}.png"))
        m.add_image_counts([EP.get_protocol("bsds").image_counts(p, gts, m.thresholds, max_dist=0.0075)])
    assert res["odsF"] == pytest.approx(m.compute()["odsF"]) and res["AP"] == pytest.approx(m.compute()["AP"])
    # seism on the same files builds thin(seg2bmap(Segmentation)) per annotator
    rc, out, _ = _run(capsys, pred, "--gt", gt, "--protocol", "seism", "--json", "--thresholds", "hed")
    assert rc == 0 and json.loads(out)["thresholds"] == 101


def test_pascal_context_labelmap_perfect_prediction(tmp_path, capsys):
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    lab = np.zeros((60, 70), np.uint16)  # PASCAL-Context: LabelMap, classes 1..459
    lab[:] = 17
    lab[15:45, 20:50] = 284
    scipy.io.savemat(gt / "2008_000002.mat", {"LabelMap": lab})
    Image.fromarray(np.where(B.thin(B.seg2bmap(lab)), 255, 0).astype(np.uint8)).save(pred / "2008_000002.png")
    rc, out, _ = _run(capsys, pred, "--gt", gt, "--json")  # seism is the default
    res = json.loads(out)
    assert rc == 0 and res["protocol"] == "seism" and res["images"] == 1
    assert res["odsF"] == pytest.approx(100.0) and res["oisF"] == pytest.approx(100.0)
    rc, out, _ = _run(capsys, pred, "--gt", gt)
    assert rc == 0 and "odsF 100.00" in out


def test_png_ground_truth_and_workers(tmp_path, capsys):
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    for k in range(3):
        g = B.seg2bmap(_labels(k))
        Image.fromarray((g * 255).astype(np.uint8)).save(gt / f"img{k}.png")  # NYUD-style edge map
        Image.fromarray(_soft(g, k)).save(pred / f"img{k}.png")
    r0 = json.loads(_run(capsys, pred, "--gt", gt, "--max-dist", "0.011", "--json")[1])
    r2 = json.loads(_run(capsys, pred, "--gt", gt, "--max-dist", "0.011", "--json", "--workers", "2")[1])
    assert r0 == r2 and r0["images"] == 3 and r0["max_dist"] == 0.011


def _one_error(capsys, *argv):
    rc, out, err = _run(capsys, *argv)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_errors_are_one_line(tmp_path, bsds_folder, capsys):
    pred, gt = bsds_folder
    Image.fromarray(np.zeros((40, 56), np.uint8)).save(pred / "999999.png")
    assert "1 of 3 predictions have no ground truth" in _one_error(capsys, pred, "--gt", gt)
    (pred / "999999.png").unlink()
    # wrong size
    Image.fromarray(np.zeros((41, 56), np.uint8)).save(pred / "100007.png")
    assert "prediction 41x56" in _one_error(capsys, pred, "--gt", gt, "--protocol", "bsds")
    # not a PNG / not 8-bit grayscale
    (pred / "100007.png").write_bytes(b"not a png")
    assert "cannot read the prediction" in _one_error(capsys, pred, "--gt", gt)
    Image.fromarray(np.zeros((40, 56, 3), np.uint8)).save(pred / "100007.png")
    assert "8-bit grayscale" in _one_error(capsys, pred, "--gt", gt)
    Image.fromarray(np.zeros((40, 56), np.uint8)).save(pred / "100007.png")
    # a .mat without the expected variables, an unreadable .mat
    scipy.io.savemat(gt / "100039.mat", {"seg": np.zeros((40, 56))})
    assert "neither groundTruth" in _one_error(capsys, pred, "--gt", gt)
    (gt / "100039.mat").write_bytes(b"garbage")
    assert "cannot read the .mat" in _one_error(capsys, pred, "--gt", gt)
    # bad options and folders
    assert "thresholds" in _one_error(capsys, pred, "--gt", gt, "--thresholds", "many")
    assert "no such ground-truth folder" in _one_error(capsys, pred, "--gt", tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no <id>.png" in _one_error(capsys, empty, "--gt", gt)


def test_seism_gt_seg_cell(tmp_path):
    from eval.edges import read_ground_truth

    segs = [_labels(0).astype(np.uint32), _labels(1).astype(np.uint32)]
    cell = np.empty((2, 1), dtype=object)  # SEISM's bsds500/ground_truth/<id>.mat: gt_seg, one cell per annotator
    cell[0, 0], cell[1, 0] = segs
    scipy.io.savemat(tmp_path / "100007.mat", {"gt_seg": cell})
    b = read_ground_truth(tmp_path / "100007.mat", "bsds")
    s = read_ground_truth(tmp_path / "100007.mat", "seism")
    assert [x.tolist() for x in b] == [B.seg2bmap(x).tolist() for x in segs]
    assert [x.tolist() for x in s] == [B.thin(B.seg2bmap(x)).tolist() for x in segs]
