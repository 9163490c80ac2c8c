"""NYUD-v2 loaders on tiny fixtures in both exact layouts: the community's
(MTL-PyTorch: .npy/.png) and the NYUD_MT archive the TSN release reads (.mat/.jpg/.png)."""

import numpy as np
import pytest
import torch
from PIL import Image

from tsn.data import build_dataset, dataset_info
from tsn.errors import DataError

H, W = 10, 14
IDS = ("0001", "0002", "0003")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("nyud")
    for d in ("images", "segmentation", "depth", "normals", "edge", "gt_sets"):
        (r / d).mkdir()
    (r / "gt_sets/train.txt").write_text("\n".join(IDS[:2]) + "\n")
    (r / "gt_sets/val.txt").write_text(IDS[2] + "\n")
    rng = np.random.default_rng(0)
    for k, i in enumerate(IDS):
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(r / f"images/{i}.jpg")
        seg = (np.arange(H * W).reshape(H, W) % 41).astype(np.uint8)  # 0 .. 40
        Image.fromarray(seg).save(r / f"segmentation/{i}.png")
        depth = np.linspace(0.5, 9.5, H * W, dtype=np.float32).reshape(H, W)
        depth[0, :3] = 0
        depth[1, 0] = np.nan
        np.save(r / f"depth/{i}.npy", depth)
        n = np.zeros((H, W, 3), np.float32)
        n[..., 2] = 1
        n[:, 0] = (0.6, 0.0, 0.8)
        n[2, 2] = (0.0, 0.0, 2.0)  # not unit: rescaled
        n[3, 3] = 0  # invalid
        np.save(r / f"normals/{i}.npy", n)
        e = np.zeros((H, W), np.float32)
        e[4, :] = 1
        np.save(r / f"edge/{i}.npy", e)
    return r


def test_info():
    info = dataset_info("nyud")
    assert info.num_classes["semseg"] == 40 and len(info.class_names["semseg"]) == 40
    assert info.edge_max_dist == 0.011 and info.edge_pos_weight == 0.8
    assert info.tasks == ("edge", "semseg", "normals", "depth")


def test_labels_value_by_value(root):
    ds = build_dataset("nyud", root=root, split="train", size="original")
    assert len(ds) == 2
    s = ds[1]
    assert s["meta"]["id"] == "0002" and s["image"].shape == (3, H, W)
    raw = (np.arange(H * W).reshape(H, W) % 41).astype(np.int64)
    exp = np.where(raw == 0, 255, raw - 1)
    assert torch.equal(s["semseg"], torch.from_numpy(exp)) and s["semseg"].dtype == torch.long
    assert int(s["semseg"][s["semseg"] != 255].max()) == 39
    d = np.linspace(0.5, 9.5, H * W, dtype=np.float32).reshape(H, W)
    d[0, :3] = 0
    d[1, 0] = 0  # non-finite -> invalid
    assert torch.equal(s["depth"][0], torch.from_numpy(d))
    n = s["normals"]
    assert torch.allclose(n[:, 5, 0], torch.tensor([0.6, 0.0, 0.8]))
    assert torch.equal(n[:, 2, 2], torch.tensor([0.0, 0.0, 1.0])) and (n[:, 3, 3] == 0).all()
    assert torch.equal(n[:, 7, 7], torch.tensor([0.0, 0.0, 1.0]))
    assert s["edge"].shape == (1, H, W) and s["edge"][0, 4].sum() == W and s["edge"].sum() == W


def test_eval_pad_and_flip_consistency(root):
    ds = build_dataset("nyud", root=root, split="val", size=(16, 16))
    s = ds[0]
    assert s["meta"]["valid"] == (H, W)
    assert (s["depth"][0, H:] == 0).all() and (s["semseg"][:, W:] == 255).all() and (s["edge"][0, H:] == 255).all()
    torch.manual_seed(1)
    tr = build_dataset("nyud", root=root, split="train", size=8, augment=True, tasks=["normals", "depth"])
    b = tr[0]
    assert b["normals"].shape == (3, 8, 8) and b["depth"].shape == (1, 8, 8)
    nrm = b["normals"].norm(dim=0)
    assert torch.all(((nrm - 1).abs() < 1e-5) | (nrm == 0))


def test_errors(root, tmp_path):
    with pytest.raises(DataError, match="images.*NYUD_MT.tgz"):
        build_dataset("nyud", root=tmp_path)
    bad = tmp_path / "NYUD_MT"
    for d in ("images", "gt_sets"):
        (bad / d).mkdir(parents=True)
    (bad / "gt_sets/train.txt").write_text("0001\n")
    with pytest.raises(DataError, match="missing, first .*images/0001.jpg"):
        build_dataset("nyud", root=tmp_path)
    with pytest.raises(DataError, match="split file"):
        build_dataset("nyud", root=tmp_path, split="val")


@pytest.fixture(scope="module")
def release_root(tmp_path_factory):
    """The NYUD_MT archive's layout: segmentation/depth as .mat, normals .jpg, edges .png."""
    import scipy.io as sio

    r = tmp_path_factory.mktemp("nyud_release") / "NYUD_MT"
    for d in ("images", "segmentation", "depth", "normals", "edge", "gt_sets"):
        (r / d).mkdir(parents=True)
    (r / "gt_sets/train.txt").write_text("\n".join(IDS[:2]) + "\n")
    (r / "gt_sets/val.txt").write_text(IDS[2] + "\n")
    rng = np.random.default_rng(0)
    for i in IDS:
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(r / f"images/{i}.jpg")
        sio.savemat(r / f"segmentation/{i}.mat", {"segmentation": (np.arange(H * W).reshape(H, W) % 41).astype(np.uint8)})
        depth = np.linspace(0.5, 9.5, H * W).reshape(H, W)  # float64 as MATLAB writes it
        depth[0, :3] = 0
        sio.savemat(r / f"depth/{i}.mat", {"depth": depth})
        n = np.zeros((H, W, 3), np.uint8)
        n[...] = (128, 128, 255)  # (0.0039, 0.0039, 1) before rescaling
        Image.fromarray(n).save(r / f"normals/{i}.jpg", quality=100)
        e = np.zeros((H, W), np.uint8)
        e[4, :] = 255
        e[6, :] = 100  # 0.39 < 0.5: not an edge
        Image.fromarray(e).save(r / f"edge/{i}.png")
    return r


def test_release_layout_is_detected_and_decoded(release_root):
    raw = (np.arange(H * W).reshape(H, W) % 41).astype(np.int64)
    for name, exp in (("nyud", np.where(raw == 0, 255, raw - 1)), ("nyud_release", raw)):
        ds = build_dataset(name, root=release_root.parent, split="train", size="original")
        assert ds.layout == "release" and len(ds) == 2
        s = ds[0]
        assert torch.equal(s["semseg"], torch.from_numpy(exp)), name
        assert s["meta"]["dataset"] == name
    d = np.linspace(0.5, 9.5, H * W, dtype=np.float32).reshape(H, W)
    d[0, :3] = 0
    assert torch.allclose(s["depth"][0], torch.from_numpy(d))
    assert s["edge"][0, 4].sum() == W and s["edge"].sum() == W  # the 100/255 row is below 0.5
    n = s["normals"]
    assert torch.allclose(n.norm(dim=0), torch.ones(H, W), atol=1e-5) and (n[2] > 0.99).all()


def test_class_conventions():
    assert dataset_info("nyud").num_classes["semseg"] == 40
    info = dataset_info("nyud_release")
    assert info.num_classes["semseg"] == 41 and len(info.class_names["semseg"]) == 41
    assert info.class_names["semseg"][0] == "background" and info.tasks == dataset_info("nyud").tasks


def test_layout_option_and_errors(root, release_root, tmp_path):
    assert build_dataset("nyud", root=root, layout="auto").layout == "mtl"
    with pytest.raises(DataError, match="8 of 10 expected files are missing, first .*edge/0001.png.*segmentation/<id>.mat"):
        build_dataset("nyud", root=root, layout="release")
    with pytest.raises(DataError, match="unknown layout 'npy'; valid: auto, mtl, release"):
        build_dataset("nyud", root=root, layout="npy")
    both = tmp_path / "both"
    import shutil

    shutil.copytree(release_root, both)
    for d in ("segmentation", "depth", "normals", "edge"):
        for f in (root / d).iterdir():
            shutil.copy(f, both / d)
    with pytest.raises(DataError, match="holds both layouts .*data.options.layout"):
        build_dataset("nyud", root=both)
    assert build_dataset("nyud", root=both, layout="mtl").layout == "mtl"
    (both / "segmentation/0001.mat").write_bytes(b"not a mat file")
    with pytest.raises(DataError, match="unreadable .mat file .*0001.mat"):
        build_dataset("nyud", root=both, layout="release")[0]
