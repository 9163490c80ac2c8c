"""tsn.metrics.pr_curves: the published edge PR curves (data) and the figure edge papers draw."""

import os
import tomllib
from pathlib import Path

import numpy as np
import pytest

import tsn.io
from tsn.errors import ConfigError, DataError, TSNError
from tsn.metrics import pr_curves as PR
from tsn.metrics.pr_curves import Curve, human_agreement, plot_pr, published

ROOT = Path(__file__).resolve().parents[1]

# /work/shared/reference/BSDS500.md and NYUD table (MCG-NKU/plot-edge-pr-curves *_bdry.txt): ODS, OIS, AP
BSDS = {
    "Roberts": (0.483, 0.513, 0.413), "Sobel": (0.539, 0.575, 0.498), "Canny": (0.611, 0.676, 0.520),
    "Pb": (0.672, 0.695, 0.652), "gPb-UCM": (0.729, 0.755, 0.745), "SE": (0.743, 0.764, 0.800),
    "DeepContour": (0.757, 0.776, 0.790), "HED": (0.788, 0.808, 0.840), "RCF-VGG16": (0.811, 0.830, 0.846),
    "RCF-ResNet101": (0.819, 0.836, 0.847),
}
NYUD = {"gPb-UCM": (0.631, 0.661, 0.562), "SE": (0.695, 0.708, 0.719), "HED": (0.741, 0.757, 0.749),
        "RCF-ResNet50": (0.781, 0.793, 0.739)}


@pytest.mark.parametrize("dataset,table,count", [("bsds500", BSDS, 24), ("nyud", NYUD, 9)])
def test_published_numbers_match_the_reference(dataset, table, count):
    curves = published(dataset)
    assert len(curves) == count
    assert [c.ods for c in curves] == sorted((c.ods for c in curves), reverse=True)  # best first
    by_name = {c.name: c for c in curves}
    for name, (ods, ois, ap) in table.items():
        c = by_name[name]
        assert (round(c.ods, 3), round(c.ois, 3), round(c.ap, 3)) == (ods, ois, ap), name
        assert c.source.startswith("MCG-NKU/plot-edge-pr-curves:edge_eval_")
        assert c.source.endswith(f"/{name}_bdry_thr.txt")


@pytest.mark.parametrize("dataset", PR.DATASETS)
def test_each_curve_peaks_at_its_ods(dataset):
    """A property of the data: the best F over the released points is the ODS (the benchmark
    interpolates between thresholds, so the ODS may exceed it by a little, never fall below)."""
    for c in published(dataset):
        best = float(c.f.max())
        assert abs(best - c.ods) <= 0.002, (c.name, best, c.ods)
        assert best <= c.ods + 1e-5, c.name
        r, p = c.ods_point  # the ODS row's R and P give the ODS
        assert abs(2 * r * p / (r + p) - c.ods) < 1e-5, c.name


def test_human_point_and_selection():
    h = human_agreement("BSDS500")
    assert h is not None and h.ods == 0.803 and h.label == "[F=.803] Human"
    assert abs(float(h.f[0]) - 0.803) < 0.001  # the drawn point agrees with the number
    assert human_agreement("nyud") is None
    names = [c.name for c in published("bsds500", ["hed", "Canny"])]  # case-insensitive, order kept
    assert names == ["HED", "Canny"]
    assert published("bsds500", ["HED"])[0].label == "[F=.788] HED"


def test_bad_names_are_one_line_data_errors():
    with pytest.raises(DataError, match=r"valid: bsds500, nyud") as e:
        published("pascal")
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match=r"'HED-XL'.*valid: RCF-ResNet101, DDS, .*Canny") as e:
        published("bsds500", ["HED", "HED-XL"])
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match=r"'Canny'; valid: .*RCF-ResNet50"):
        published("nyud", ["Canny"])
    with pytest.raises(DataError, match="valid: bsds500, nyud"):
        plot_pr([], "/tmp/never-written.png", dataset="bsds")


def test_from_counts_hand_made():
    # (cntR, sumR, cntP, sumP) per threshold; the last one predicts nothing (P = 0/0 -> 0)
    counts = np.array([[90, 100, 30, 100], [80, 100, 60, 80], [50, 100, 45, 50], [0, 100, 0, 0]])
    c = Curve.from_counts("ours", [0.2, 0.4, 0.6, 0.8], counts)
    np.testing.assert_allclose(c.recall, [0.9, 0.8, 0.5, 0.0])
    np.testing.assert_allclose(c.precision, [0.3, 0.75, 0.9, 0.0])
    f = 2 * 0.8 * 0.75 / 1.55
    assert c.ods == pytest.approx(f) and c.best_point == (0.8, 0.75)  # no summary: the best point
    assert c.ois is None and c.ap is None
    r, p = c.points()  # the R = 0 point is not drawn (edgesEvalPlot.m's R >= 1e-3)
    assert r.tolist() == [0.9, 0.8, 0.5]
    # sumR = 0 (nothing labelled) is zero-safe too
    z = Curve.from_counts("empty", [0.5], np.zeros((1, 4)))
    assert z.recall.tolist() == [0.0] and z.precision.tolist() == [0.0] and z.ods == 0.0


def test_from_counts_takes_the_metric_summary():
    counts = np.array([[90, 100, 30, 100], [80, 100, 60, 80]])
    pct = {"odsF": 78.2, "oisF": 80.1, "AP": 83.0, "odsR": 79.0, "odsP": 77.4, "odsT": 0.41}  # EdgeMetric.compute()
    c = Curve.from_counts("ours", [0.3, 0.6], counts, pct, source="runs/x")
    assert (c.ods, c.ois, c.ap) == pytest.approx((0.782, 0.801, 0.83))
    assert c.ods_point == pytest.approx((0.79, 0.774)) and c.source == "runs/x"
    frac = {"odsF": 0.782, "oisF": 0.801, "AP": 0.83}  # edge_protocols.summarize()
    assert Curve.from_counts("ours", [0.3, 0.6], counts, frac).ods == pytest.approx(0.782)
    with pytest.raises(DataError, match=r"\[T, 4\]"):
        Curve.from_counts("ours", [0.3, 0.6], counts[:, :3])
    with pytest.raises(DataError, match="2 rows of counts for 3 thresholds"):
        Curve.from_counts("ours", [0.1, 0.3, 0.6], counts)
    with pytest.raises(DataError, match="exceeds its total"):
        Curve.from_counts("ours", [0.3], [[5, 4, 1, 1]])


def test_from_counts_accepts_torch():
    torch = pytest.importorskip("torch")
    c = Curve.from_counts("ours", torch.tensor([0.5]), torch.tensor([[3, 4, 3, 6]], dtype=torch.int64))
    assert c.recall.tolist() == [0.75] and c.precision.tolist() == [0.5]


def test_plot_writes_a_png(tmp_path):
    ours = Curve(name="ours", recall=np.linspace(0.95, 0.0, 20), precision=np.linspace(0.4, 1.0, 20), ods=0.7)
    out = plot_pr([ours], tmp_path / "pr.png", title="BSDS500 test")
    data = out.read_bytes()
    assert out == tmp_path / "pr.png" and data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert [p.name for p in tmp_path.iterdir()] == ["pr.png"]  # no temporary left behind
    # every published method, legend beside the axes; NYUD (no human point); ours alone
    assert plot_pr(ours, tmp_path / "all.png", methods=PR.published_methods("bsds500")).stat().st_size > 10_000
    assert plot_pr([ours], tmp_path / "nyud.pdf", dataset="nyud").read_bytes()[:4] == b"%PDF"
    assert plot_pr([ours], tmp_path / "alone.png", dataset=None).stat().st_size > 0


def test_unwritable_paths_are_one_line_errors(tmp_path, monkeypatch):
    ours = Curve(name="ours", recall=[0.5], precision=[0.5], ods=0.5)
    assert plot_pr(ours, tmp_path / "missing" / "pr.png").is_file()  # missing folders are made
    with pytest.raises(ConfigError, match=r"suffix '\.xyz' is not a format matplotlib writes") as e:
        plot_pr(ours, tmp_path / "pr.xyz")
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="suffix '\\(none\\)'"):
        plot_pr(ours, tmp_path / "pr")
    (tmp_path / "file").write_text("x")
    with pytest.raises(TSNError, match="is not a writable folder"):
        plot_pr(ours, tmp_path / "file" / "pr.png")
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(TSNError, match="is a folder"):
        plot_pr(ours, tmp_path / "dir.png")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with monkeypatch.context() as m:
            if os.geteuid() == 0:  # root writes anywhere: make os.access say what it would say to a user
                m.setattr(tsn.io.os, "access", lambda p, mode: Path(p) != ro)
            with pytest.raises(TSNError, match="is not a writable folder"):
                plot_pr(ours, ro / "pr.png")
    finally:
        ro.chmod(0o700)


def test_curve_rejects_percentages_and_ragged_points():
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        Curve(name="x", recall=[50.0], precision=[0.5], ods=0.5)
    with pytest.raises(DataError, match="same non-zero length"):
        Curve(name="x", recall=[0.5, 0.4], precision=[0.5], ods=0.5)
    with pytest.raises(DataError, match="ods must be a fraction"):
        Curve(name="x", recall=[0.5], precision=[0.5], ods=78.8)


def test_data_file_is_package_data():
    """published_edges.json ships in a wheel, not only in the source tree."""
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert PR.DATA_FILE in cfg["tool"]["setuptools"]["package-data"]["tsn.metrics"]
    assert (ROOT / "tsn" / "metrics" / PR.DATA_FILE).is_file()
