"""Test-time geometry: every metric on the image's real pixels at its real
size (the edge tolerance from the original diagonal), and the release's test
pipeline (bicubic in, bilinear / nearest out, 8-bit), on tiny fake datasets
and hand-computed references."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn

from tsn.data.base import MultiTaskDataset, collate
from tsn.data.transforms import FitPad
from tsn.engine import geometry as G
from tsn.engine.evaluate import evaluate
from tsn.metrics import MultiTaskMetrics
from tsn.metrics import boundary as B
from tsn.metrics.saliency import THRESHOLDS_A, THRESHOLDS_B


class FakeData(MultiTaskDataset):
    """Fixed samples given as dicts (image [3,H,W] in [0,1] and labels)."""

    def __init__(self, samples, tasks, transform) -> None:
        self.samples = samples
        super().__init__("val", tasks, None, transform=transform)

    def __len__(self):
        return len(self.samples)

    def load(self, index):
        s = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in self.samples[index].items()}
        s["meta"] = {"id": f"img{index}", "index": index, "size": tuple(s["image"].shape[-2:])}
        return s


class FixedModel(nn.Module):
    """Returns given outputs whatever the input (one image per batch)."""

    def __init__(self, outputs) -> None:
        super().__init__()
        self.outputs = outputs
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x, tasks):
        return {t: self.outputs[t].unsqueeze(0).expand(x.shape[0], *self.outputs[t].shape) for t in tasks}


def _run(samples, tasks, transform, outputs, **metric_opts):
    ds = FakeData(samples, tasks, transform)
    loader = torch.utils.data.DataLoader(ds, batch_size=1, collate_fn=collate)
    metrics = MultiTaskMetrics(tasks, **metric_opts)
    return evaluate(FixedModel(outputs), loader, tasks, metrics, torch.device("cpu")).metrics


def _vline(shape, col, rows):
    e = torch.zeros(1, *shape)
    e[0, rows[0]:rows[1], col] = 1
    return e


# ---------------------------------------------------------------- bug 1: tolerance at the real size


@pytest.mark.parametrize("shape,canvas,max_dist,real,padded", [
    ((375, 500), (512, 512), 0.0075, 4.6875, 5.4306),  # PASCAL
    ((425, 560), (480, 640), 0.011, 7.7330, 8.80),  # NYUD
])
def test_edge_tolerance_is_that_of_the_original_image(shape, canvas, max_dist, real, padded):
    assert B.tolerance_px(max_dist, shape) == pytest.approx(real, abs=1e-3)
    assert B.tolerance_px(max_dist, canvas) == pytest.approx(padded, abs=1e-3)
    shift = math.floor(real) + 1  # beyond the real tolerance, within the padded one
    assert real < shift <= padded
    gt = _vline(shape, 100, (50, 90))
    for transform in (FitPad(canvas), G.PadEval(canvas)):  # the trainer's validation and python -m eval
        for d, want in ((shift, 0.0), (shift - 1, 100.0)):
            pred = torch.full((1, *canvas), -20.0)
            pred[0, 50:90, 100 + d] = 20.0
            res = _run([{"image": torch.rand(3, *shape), "edge": gt}], ["edge"], transform, {"edge": pred},
                       edge_max_dist=max_dist, thresholds=[0.5])
            assert res["edge"]["odsF"] == pytest.approx(want), (transform, d)
    # what the padded array would have given: a match at the shifted distance
    pad = torch.full((1, *canvas), 255.0)
    pad[:, : shape[0], : shape[1]] = gt
    pred = torch.full((1, 1, *canvas), -20.0)
    pred[0, 0, 50:90, 100 + shift] = 20.0
    m = MultiTaskMetrics(["edge"], edge_max_dist=max_dist, thresholds=[0.5])
    m.update({"edge": pred}, {"edge": pad[None]})
    assert m.compute()["edge"]["odsF"] == pytest.approx(100.0)


def test_every_metric_sees_only_real_pixels_when_the_image_is_shrunk_to_fit():
    """A 40x60 image evaluated at 32x32 is shrunk to 21x32 and padded; scoring
    is back at 40x60 against the original labels."""
    h, w = 40, 60
    seg = torch.zeros(h, w, dtype=torch.long)
    seg[:, 30:] = 1
    normals = torch.zeros(3, h, w)
    normals[2] = 1.0
    samples = [{"image": torch.rand(3, h, w), "semseg": seg, "normals": normals}]
    logits = torch.zeros(3, 32, 32)
    logits[1] = 5.0  # class 1 everywhere, also on the padding
    nrm = torch.zeros(3, 32, 32)
    nrm[2] = 1.0
    res = _run(samples, ["semseg", "normals"], G.PadEval((32, 32)), {"semseg": logits, "normals": nrm},
               num_classes={"semseg": 3})
    assert res["semseg"]["pixAcc"] == pytest.approx(50.0)  # half of the 40x60 pixels are class 1
    assert res["normals"]["mean"] == pytest.approx(0.0, abs=1e-3)


# ---------------------------------------------------------------- the release's pipeline


def _cv2_cubic_reference(img: np.ndarray, size) -> np.ndarray:
    """cv2.resize INTER_CUBIC written out: half-pixel source coordinate,
    Keys cubic with a = -0.75, indices clamped (replicated border)."""
    a = -0.75

    def weights(t):
        x = np.array([1 + t, t, 1 - t, 2 - t])
        w = np.where(x <= 1, (a + 2) * x**3 - (a + 3) * x**2 + 1, a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a)
        return w

    def axis(n_in, n_out):
        m = np.zeros((n_out, n_in))
        for d in range(n_out):
            f = (d + 0.5) * n_in / n_out - 0.5
            s = math.floor(f)
            for k, wk in zip(range(s - 1, s + 3), weights(f - s)):
                m[d, min(max(k, 0), n_in - 1)] += wk
        return m

    my, mx = axis(img.shape[-2], size[0]), axis(img.shape[-1], size[1])
    return np.einsum("ij,cjk,lk->cil", my, img, mx)


def test_release_input_is_bicubic_as_cv2_without_clamping():
    img = torch.rand(3, 7, 11, dtype=torch.float64)
    for size in ((16, 16), (4, 5)):
        out = G.ReleaseResize(size)({"image": img, "meta": {}})
        assert out["image"].shape == (3, *size)
        np.testing.assert_allclose(out["image"].numpy(), _cv2_cubic_reference(img.numpy(), size), atol=1e-10)
    step = torch.zeros(3, 4, 4)
    step[:, :, 2:] = 1.0
    up = G.ReleaseResize((8, 8))({"image": step, "meta": {}})["image"]
    assert up.min() < 0 and up.max() > 1  # cubic overshoot kept, as the release's float32 image


def test_release_output_resizes_as_cv2_and_truncates():
    # bilinear 2 -> 4 with half-pixel centres: [v0, .75 v0 + .25 v1, .25 v0 + .75 v1, v1]
    logit = torch.tensor([[[-100.0, 100.0]]])  # sigmoid 0 and 1 -> 0 and 255
    out = G.release_output("edge", logit, (1, 4))
    assert out.dtype == torch.uint8 and out.tolist() == [[[0, 63, 191, 255]]]  # 63.75 and 191.25 truncated
    # nearest (cv2 INTER_NEAREST = floor(dst * src / dst)): 5 -> 2 takes columns 0 and 2
    cls = torch.zeros(4, 1, 5)
    for c in range(4):
        cls[c, 0, c] = 1.0
    assert G.release_output("semseg", cls, (1, 2)).tolist() == [[0, 2]]
    assert G.release_output("semseg", cls[:, :, :2], (1, 4)).tolist() == [[0, 0, 1, 1]]
    # normals: unit vectors to (n + 1) * 255 / 2, truncated
    n = torch.zeros(3, 1, 1)
    n[0], n[2] = 3.0, 4.0  # unit (0.6, 0, 0.8)
    assert G.release_output("normals", n, (1, 1))[:, 0, 0].tolist() == [204, 127, 229]  # 204.0, 127.5, 229.5
    # depth is only resized
    assert G.release_output("depth", torch.tensor([[[1.0, 3.0]]]), (1, 4)).tolist() == [[[1.0, 1.5, 2.5, 3.0]]]


def _rational_thresholds():
    out = [(Fraction(i, 100), i / 100) for i in range(1, 100)]
    out += [(Fraction(round(t * 20), 20), t) for t in THRESHOLDS_A] + [(Fraction(round(t * 20), 20), t) for t in THRESHOLDS_B]
    out += [(Fraction(i, 10), i / 10) for i in range(1, 10)]
    return out


def test_8bit_values_reach_the_metrics_as_the_release_stored_them():
    L = G.stored_to_metric_input("edge", torch.arange(256, dtype=torch.uint8))
    p = torch.sigmoid(L.float())
    k = list(range(256))
    assert [int(v) for v in torch.floor(p * 255).tolist()] == k  # a truncating metric gets k back
    assert [int(v) for v in np.floor(p.double().numpy() * 255)] == k
    for exact, t in _rational_thresholds():  # every threshold compares as on k/255
        assert ((p > t).tolist() == [Fraction(i, 255) > exact for i in k]), t
        assert ((p >= t).tolist() == [Fraction(i, 255) >= exact for i in k]), t


def test_release_geometry_scores_at_the_original_size():
    h, w = 30, 50
    seg = torch.zeros(h, w, dtype=torch.long)
    seg[:, 25:] = 1
    edge = _vline((h, w), 20, (5, 25))
    sal = torch.zeros(1, h, w)
    sal[:, :, :25] = 1
    samples = [{"image": torch.rand(3, h, w), "semseg": seg, "edge": edge, "sal": sal}]
    logits = torch.zeros(3, 16, 16)
    logits[1, :, :] = 5.0
    edge_logit = torch.full((1, 16, 16), -30.0)
    sal_logit = torch.full((1, 16, 16), 30.0)
    ds = FakeData(samples, ["semseg", "edge", "sal"], G.ReleaseResize((16, 16)))
    s = ds[0]
    assert s["image"].shape == (3, 16, 16) and s["meta"]["size"] == (h, w) and s["meta"]["geometry"] == "release"
    assert torch.equal(s["meta"]["original"]["semseg"], seg)
    res = _run(samples, ["semseg", "edge", "sal"], G.ReleaseResize((16, 16)),
               {"semseg": logits, "edge": edge_logit, "sal": sal_logit}, num_classes={"semseg": 3}, thresholds=[0.5])
    assert res["semseg"]["pixAcc"] == pytest.approx(50.0)  # at 30x50, the original labels
    assert res["edge"]["odsR"] == pytest.approx(0.0)
    assert res["sal"]["mIoU"] == pytest.approx(50.0)  # all predicted salient: IoU = 750 / 1500


def test_geometry_names_are_checked():
    from tsn.errors import ConfigError

    with pytest.raises(ConfigError, match="eval.geometry"):
        G.check_geometry("crop")
    assert isinstance(G.eval_transform("release", (8, 8)), G.ReleaseResize)
    assert isinstance(G.eval_transform("pad", (8, 8)), G.PadEval)
    assert type(G.eval_transform("pad", (8, 8), native_size=(8, 8))).__name__ == "Identity"
