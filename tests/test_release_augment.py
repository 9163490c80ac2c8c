"""The release's augmentation preset: geometry against hand-made cases,
label validity, and the dataset option."""

from __future__ import annotations

import math

import pytest
import torch

from tsn.data import build_dataset
from tsn.data import release_augment as R
from tsn.errors import ConfigError


def sample_of(h=8, w=8):
    torch.manual_seed(0)
    sem = torch.zeros(h, w, dtype=torch.long)
    sem[:, 1] = 7
    n = torch.zeros(3, h, w)
    n[2] = 1.0
    return {"image": torch.rand(3, h, w), "semseg": sem, "edge": (sem == 7).float()[None], "normals": n,
            "meta": {"id": "x"}}


def test_shift_moves_content_and_pads_with_zero():
    s = R.warp(sample_of(), scale=1.0, angle_deg=0.0, shift=(0.25, 0.0))  # 0.25 of 8 px = 2 px right
    cols = s["semseg"].eq(7).any(0).nonzero().flatten().tolist()
    assert cols == [3]
    assert (s["semseg"][:, :2] == 0).all() and (s["image"][:, :, :2] == 0).all()  # border_mode=0: image too


def test_rotation_is_counter_clockwise_as_cv2_and_rotates_vectors():
    x = sample_of()
    x["semseg"] = torch.arange(64).view(8, 8)
    s = R.warp(x, scale=1.0, angle_deg=90.0)
    assert torch.equal(s["semseg"], torch.rot90(x["semseg"], 1, (0, 1)))  # np.rot90 = counter-clockwise
    v = torch.zeros(3, 8, 8)
    v[0], v[1] = 0.6, 0.8
    out = R.warp({"image": torch.rand(3, 8, 8), "normals": v}, scale=1.0, angle_deg=30.0)
    a = math.radians(30)
    exp = torch.tensor([0.6 * math.cos(a) + 0.8 * math.sin(a), -0.6 * math.sin(a) + 0.8 * math.cos(a), 0.0])
    inside = out["normals"][:, 4, 4]
    assert torch.allclose(inside, exp, atol=1e-4)  # ASTMT's in-plane rotation of the vectors
    norms = out["normals"].norm(dim=0)
    assert torch.all(((norms - 1).abs() < 1e-4) | (norms == 0))


def test_zoom_about_the_centre():
    x = sample_of()
    x["semseg"] = torch.zeros(8, 8, dtype=torch.long)
    x["semseg"][3:5, 3:5] = 1  # the central 2x2 block
    s = R.warp(x, scale=2.0, angle_deg=0.0)
    assert s["semseg"].sum() == 16 and s["semseg"][2:6, 2:6].all()  # grows to the central 4x4


def test_fixed_resize_ignores_aspect_and_renormalises():
    x = sample_of(6, 10)
    x["normals"][:, 0, 0] = 0  # invalid stays invalid
    s = R.resize_fixed(x, (16, 16))
    assert s["image"].shape == (3, 16, 16) and s["semseg"].shape == (16, 16) and s["edge"].shape == (1, 16, 16)
    assert set(s["semseg"].unique().tolist()) <= {0, 7}
    assert (s["normals"][:, 0, 0] == 0).all() and torch.allclose(s["normals"][:, 8, 8], torch.tensor([0.0, 0, 1]))


def test_preset_keeps_labels_valid_and_is_seeded():
    def run(seed):
        torch.manual_seed(seed)
        return R.ReleaseAugment((16, 16))(sample_of(12, 20))

    a, b = run(3), run(3)
    assert all(torch.equal(a[k], b[k]) for k in ("image", "semseg", "edge", "normals"))
    for seed in range(10):
        s = run(seed)
        assert s["image"].shape == (3, 16, 16) and 0 <= s["image"].min() and s["image"].max() <= 1
        assert set(s["semseg"].unique().tolist()) <= {0, 7} and set(s["edge"].unique().tolist()) <= {0.0, 1.0}
        n = s["normals"].norm(dim=0)
        assert torch.all(((n - 1).abs() < 1e-4) | (n == 0))


def test_hsv_round_trip_and_hue_shift():
    img = torch.rand(3, 5, 7)
    assert torch.allclose(R.hsv_to_rgb(R.rgb_to_hsv(img)), img, atol=1e-5)
    red = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    assert torch.allclose(R.hue_saturation_value(red, 1 / 3, 0, 0), torch.tensor([0.0, 1.0, 0.0]).view(3, 1, 1), atol=1e-6)


def test_dataset_option():
    ds = build_dataset("synthetic", split="train", size=32, augment=True, augmentation="release",
                       length={"train": 2, "val": 1, "test": 1})
    assert isinstance(ds.transform, R.ReleaseAugment)
    assert ds[0]["image"].shape == (3, 32, 32)
    with pytest.raises(ConfigError, match="unknown augmentation 'albumentations'; valid: default, release"):
        build_dataset("synthetic", split="train", size=32, augmentation="albumentations")
