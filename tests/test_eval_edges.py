"""python -m eval edges: fixtures in the exact formats (BSDS500 groundTruth cell, PASCAL-Context LabelMap, PNG)."""

import json
from pathlib import Path

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
    assert "8-bit or 16-bit grayscale" in _one_error(capsys, pred, "--gt", gt)
    Image.fromarray(np.zeros((40, 56), np.uint8)).save(pred / "100007.png")
    # a .mat without the expected variables, an unreadable .mat
    scipy.io.savemat(gt / "100039.mat", {"seg": np.zeros((40, 56))})
    assert "neither groundTruth" in _one_error(capsys, pred, "--gt", gt)
    (gt / "100039.mat").write_bytes(b"garbage")
    assert "unreadable .mat file" in _one_error(capsys, pred, "--gt", gt)
    # bad options and folders
    assert "thresholds" in _one_error(capsys, pred, "--gt", gt, "--thresholds", "many")
    assert "no such ground-truth folder" in _one_error(capsys, pred, "--gt", tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no <id>.png" in _one_error(capsys, empty, "--gt", gt)


def test_seism_gt_seg_cell(tmp_path):
    from tsn.metrics.edge_io import read_ground_truth

    segs = [_labels(0).astype(np.uint32), _labels(1).astype(np.uint32)]
    cell = np.empty((2, 1), dtype=object)  # SEISM's bsds500/ground_truth/<id>.mat: gt_seg, one cell per annotator
    cell[0, 0], cell[1, 0] = segs
    scipy.io.savemat(tmp_path / "100007.mat", {"gt_seg": cell})
    b = read_ground_truth(tmp_path / "100007.mat", "bsds")
    s = read_ground_truth(tmp_path / "100007.mat", "seism")
    assert [x.tolist() for x in b] == [B.seg2bmap(x).tolist() for x in segs]
    assert [x.tolist() for x in s] == [B.seg2bmap(x).tolist() for x in segs]  # SEISM thins when it counts
    assert EP.get_protocol("seism").thin_gt and not EP.get_protocol("bsds").thin_gt


# ---------------------------------------------------------------- formats, coverage, outputs


def test_prediction_formats_give_the_same_counts(tmp_path, capsys):
    """8-bit PNG, 16-bit PNG, float .npy, a .mat variable and a double-size ucm2 of the same
    values score the same (the values are exact k/255 in every container)."""
    gt = tmp_path / "gt"
    gt.mkdir()
    seg = _labels(3)
    _save_bsds_gt(gt / "1.mat", [seg, _labels(13)])
    u8 = _soft(B.seg2bmap(seg), 3)
    f = u8.astype(np.float64) / 255.0
    folders = {k: tmp_path / k for k in ("png8", "png16", "npy", "mat", "ucm2")}
    for d in folders.values():
        d.mkdir()
    Image.fromarray(u8).save(folders["png8"] / "1.png")
    Image.fromarray((u8.astype(np.uint16) * 257)).save(folders["png16"] / "1.png")  # k/255 == 257k/65535
    np.save(folders["npy"] / "1.npy", f)
    scipy.io.savemat(folders["mat"] / "1.mat", {"E": f})
    ucm2 = np.zeros((2 * f.shape[0] + 1, 2 * f.shape[1] + 1))
    ucm2[2::2, 2::2] = f
    scipy.io.savemat(folders["ucm2"] / "1.mat", {"ucm2": ucm2})
    res = {k: json.loads(_run(capsys, d, "--gt", gt, "--protocol", "bsds", "--json")[1]) for k, d in folders.items()}
    for k in folders:
        assert res[k]["images"] == 1 and res[k]["odsF"] == pytest.approx(res["png8"]["odsF"], abs=1e-12), k
        assert res[k]["AP"] == pytest.approx(res["png8"]["AP"], abs=1e-12), k


def test_bad_predictions_are_one_line(tmp_path, capsys):
    gt = tmp_path / "gt"
    gt.mkdir()
    _save_bsds_gt(gt / "1.mat", [_labels(0)])
    pred = tmp_path / "pred"
    pred.mkdir()
    h, w = _labels(0).shape
    Image.fromarray(np.full((h, w), 200, np.uint16)).save(pred / "1.png")
    assert "values all lie in 0..255" in _one_error(capsys, pred, "--gt", gt)
    (pred / "1.png").unlink()
    scipy.io.savemat(pred / "1.mat", {"ucm2": np.zeros((2 * h - 1, 2 * w + 1))})
    assert f"needs the double size {2 * h + 1}x{2 * w + 1}" in _one_error(capsys, pred, "--gt", gt)
    scipy.io.savemat(pred / "1.mat", {"a": np.zeros((h, w)), "b": np.zeros((h, w))})
    assert "exactly one 2-D numeric variable" in _one_error(capsys, pred, "--gt", gt)
    (pred / "1.mat").unlink()
    np.save(pred / "1.npy", np.full((h, w), 3.0))
    assert "must lie in [0, 1]" in _one_error(capsys, pred, "--gt", gt)
    np.save(pred / "1.npy", np.full((h, w), np.nan))
    assert "NaN" in _one_error(capsys, pred, "--gt", gt)
    Image.fromarray(np.zeros((h, w), np.uint8)).save(pred / "1.png")
    assert "two prediction files for 1" in _one_error(capsys, pred, "--gt", gt)
    # ground truth of another structure
    (pred / "1.npy").unlink()
    scipy.io.savemat(gt / "1.mat", {"groundTruth": np.zeros((1, 2))})
    assert "not a cell of structs" in _one_error(capsys, pred, "--gt", gt, "--protocol", "bsds")
    cell = np.empty((1, 2), dtype=object)
    cell[0, 0] = {"Segmentation": np.zeros((h, w), np.uint16), "Boundaries": np.zeros((h, w), np.uint8)}
    cell[0, 1] = {"Segmentation": np.zeros((h, w + 1), np.uint16), "Boundaries": np.zeros((h, w + 1), np.uint8)}
    scipy.io.savemat(gt / "1.mat", {"groundTruth": cell})
    assert "not 2-D maps of one size" in _one_error(capsys, pred, "--gt", gt, "--protocol", "bsds")


def test_a_partial_set_is_refused_or_said(bsds_folder, tmp_path, capsys):
    pred, gt = bsds_folder
    (pred / "100039.png").unlink()
    line = _one_error(capsys, pred, "--gt", gt, "--protocol", "bsds")
    assert "1 of the 2 ground-truth images have no prediction" in line and "--partial" in line
    res = json.loads(_run(capsys, pred, "--gt", gt, "--protocol", "bsds", "--partial", "--json")[1])
    assert res["images"] == 1 and res["partial"] and res["missing"] == 1 and res["ground_truth"] == 2
    rc, out, _ = _run(capsys, pred, "--gt", gt, "--protocol", "bsds", "--partial")
    assert rc == 0 and "PARTIAL: 1 of 2" in out
    ids = tmp_path / "ids.txt"
    ids.write_text("100007\n")
    res = json.loads(_run(capsys, pred, "--gt", gt, "--protocol", "bsds", "--ids", ids, "--json")[1])
    assert res["images"] == 1 and not res["partial"] and res["ground_truth"] == 1
    ids.write_text("100007\n123\n")
    assert "1 of the 2 listed ids have no ground truth" in _one_error(capsys, pred, "--gt", gt, "--ids", ids)


def test_per_image_rows_and_plot(bsds_folder, tmp_path, capsys):
    pred, gt = bsds_folder
    rows, fig = tmp_path / "out" / "img.txt", tmp_path / "out" / "pr.png"
    rc, out, _ = _run(capsys, pred, "--gt", gt, "--protocol", "bsds", "--per-image", rows, "--plot", fig,
                      "--published", "bsds500")
    assert rc == 0 and fig.stat().st_size > 10_000
    lines = [ln.split() for ln in rows.read_text().splitlines()]
    assert [ln[0] for ln in lines] == ["100007", "100039"] and all(0 < float(ln[4]) <= 1 for ln in lines)
    # nothing replaced without --overwrite, and a wrong dataset fails before any work
    assert "exists; pass --overwrite" in _one_error(capsys, pred, "--gt", gt, "--plot", fig)
    assert _run(capsys, pred, "--gt", gt, "--plot", fig, "--overwrite")[0] == 0
    assert "valid" in _one_error(capsys, pred, "--gt", gt, "--plot", tmp_path / "x.png", "--published", "coco")


# ---------------------------------------------------------------- the Berkeley benchmark's own test set


FIXTURE = Path(__file__).parent / "fixtures" / "bsds"


@pytest.mark.parametrize("inputs,bench", [("png", "test_2"), ("ucm2", "test_1")])
def test_reproduces_the_berkeley_benchmarks_own_result_files(inputs, bench, tmp_path, capsys):
    """The bench's 5 images (real photographs, 5-6 annotators) scored at its 5 thresholds against
    the result files MATLAB wrote (test_benchs.m parts 1 and 2). The summaries agree to 0.001 and
    every image's best F to 0.0025. What differs is correspondPixels' choice of matching
    (docs/METRICS.md): ours is a maximum matching, so recall is never below MATLAB's and at most
    0.002 above; which predicted pixels get matched (precision) varies with the choice."""
    rows = tmp_path / "img.txt"
    rc, out, _ = _run(capsys, FIXTURE / "bench" / inputs, "--gt", FIXTURE / "groundTruth" / "test", "--protocol",
                      "bsds", "--thresholds", "5", "--per-image", rows, "--json")
    assert rc == 0
    res = json.loads(out)
    ref = np.loadtxt(FIXTURE / "bench" / bench / "eval_bdry.txt")  # T R P F(ODS) R P F(OIS) AP
    assert res["images"] == 5 and res["odsT"] == pytest.approx(ref[0], abs=1e-6)
    for key, k in (("odsF", 3), ("oisF", 6), ("AP", 7)):
        assert res[key] / 100 == pytest.approx(ref[k], abs=1e-3), key
    ours = np.array([[float(v) for v in ln.split()[1:]] for ln in rows.read_text().splitlines()])
    theirs = np.loadtxt(FIXTURE / "bench" / bench / "eval_bdry_img.txt")[:, 1:]  # index, T, R, P, F
    assert ours.shape == theirs.shape == (5, 4)
    assert np.allclose(ours[:, 0], theirs[:, 0], atol=1e-5)  # the same best threshold
    assert np.all(ours[:, 1] >= theirs[:, 1] - 1e-6) and np.all(ours[:, 1] - theirs[:, 1] < 2e-3)
    assert np.abs(ours[:, 3] - theirs[:, 3]).max() < 2.5e-3  # 8068 under ucm2: 0.0021, all of it precision
