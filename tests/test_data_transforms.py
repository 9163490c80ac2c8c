"""Each joint transform keeps every label consistent with the image."""

import pytest
import torch

from tsn.data import build_dataset
from tsn.data import transforms as T
from tsn.data.transforms import IMAGENET_MEAN

LABELS = ("edge", "semseg", "parts", "normals", "sal", "depth")


@pytest.fixture(scope="module")
def raw():
    ds = build_dataset("synthetic", split="val", size=(32, 40), length=8)
    # a scene with a person, so that parts are not all 255
    for i in range(8):
        s = ds.load(i)
        if (s["parts"] != 255).any():
            return s
    pytest.skip("no person in the first scenes")


def test_hflip(raw):
    f = T.hflip(raw)
    for k in ("image", *LABELS):
        if k != "normals":
            assert torch.equal(f[k], raw[k].flip(-1)), k
    assert torch.equal(f["normals"][0], -raw["normals"][0].flip(-1))
    assert torch.equal(f["normals"][1:], raw["normals"][1:].flip(-1))
    back = T.hflip(f)
    for k in ("image", *LABELS):
        assert torch.equal(back[k], raw[k]), k


def test_scale_labels_nearest_and_depth_divided(raw):
    for s in (2.0, 0.5, 1.37):
        h, w = int(round(32 * s)), int(round(40 * s))
        out = T.resize(raw, (h, w), depth_scale=s)
        assert out["image"].shape == (3, h, w)
        for k in LABELS:
            assert out[k].shape[-2:] == (h, w) and out[k].dtype == raw[k].dtype, k
        for k in ("semseg", "parts", "edge", "sal"):
            assert set(out[k].unique().tolist()) <= set(raw[k].unique().tolist()), k
        # nearest sampling: each output depth value is an input depth value divided by s
        src = set(torch.round(raw["depth"].flatten() * 1e3).tolist())
        assert set(torch.round(out["depth"].flatten() * s * 1e3).tolist()) <= src
        n = out["normals"].norm(dim=0)
        assert torch.all(((n - 1).abs() < 1e-5) | (n == 0))
    # a 2x zoom copies each label pixel into a 2x2 block, aligned with the image
    up = T.resize(raw, (64, 80), depth_scale=2.0)
    assert torch.equal(up["semseg"][::2, ::2], raw["semseg"]) and torch.equal(up["semseg"][1::2, 1::2], raw["semseg"])
    assert torch.allclose(up["depth"][:, ::2, ::2] * 2, raw["depth"])


def test_random_scale_then_crop_stays_aligned(raw):
    """Whatever crop is taken, the labels come from the same place as the image."""
    torch.manual_seed(3)
    for _ in range(5):
        out = T.RandomCrop((20, 24))(raw)
        img = out["image"]
        found = None
        for top in range(32 - 20 + 1):
            for left in range(40 - 24 + 1):
                if torch.equal(raw["image"][:, top : top + 20, left : left + 24], img):
                    found = (top, left)
        assert found is not None
        top, left = found
        for k in LABELS:
            assert torch.equal(out[k], raw[k][..., top : top + 20, left : left + 24]), k


def test_padding_uses_no_label_values(raw):
    out = T.RandomCrop((48, 56))(raw)  # larger than the image: padded, content at a random place
    pad = out["semseg"] == 255
    assert pad.sum() >= 48 * 56 - 32 * 40
    padded = T.pad(raw, (48, 56))
    assert torch.equal(padded["semseg"][:32, :40], raw["semseg"])
    assert (padded["semseg"][32:] == 255).all() and (padded["parts"][:, 40:] == 255).all()
    assert (padded["edge"][:, 32:] == 255).all() and (padded["sal"][:, 32:] == 255).all()
    assert (padded["normals"][:, 32:] == 0).all() and (padded["depth"][:, 32:] == 0).all()
    assert torch.allclose(padded["image"][:, 45, 50], torch.tensor(IMAGENET_MEAN))


def test_color_jitter_touches_only_the_image(raw):
    torch.manual_seed(0)
    out = T.ColorJitter()(raw)
    assert not torch.equal(out["image"], raw["image"])
    assert out["image"].min() >= 0 and out["image"].max() <= 1
    for k in LABELS:
        assert out[k] is raw[k], k


def test_eval_resize_and_fitpad(raw):
    r = T.Resize((16, 16))(raw)
    assert r["semseg"].shape == (16, 16) and r["normals"].shape == (3, 16, 16)
    src = set(torch.round(raw["depth"].flatten() * 1e3).tolist())
    assert set(torch.round(r["depth"].flatten() * 1e3).tolist()) <= src  # depth not rescaled
    p = T.FitPad((40, 40))({**raw, "meta": {}})
    assert p["meta"]["valid"] == (32, 40) and p["semseg"].shape == (40, 40)
    assert torch.equal(p["semseg"][:32], raw["semseg"])
    shrink = T.FitPad((16, 16))({**raw, "meta": {}})
    assert shrink["meta"]["valid"] == (13, 16) and shrink["image"].shape == (3, 16, 16)
    assert (shrink["semseg"][13:] == 255).all()


def test_default_pipelines():
    train = T.default_transform(True, (64, 64))
    names = [type(t).__name__ for t in train.transforms]
    assert names == ["RandomScale", "RandomCrop", "RandomHorizontalFlip", "ColorJitter"]
    assert isinstance(T.default_transform(False, (64, 64), native_size=(64, 64)), T.Identity)
    assert isinstance(T.default_transform(False, (64, 64)), T.FitPad)
    assert isinstance(T.default_transform(False, (64, 64), eval_resize="resize"), T.Resize)
