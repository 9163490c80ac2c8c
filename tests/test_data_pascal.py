"""PASCAL-Context loader on a tiny fixture written in the community's exact layout."""

import numpy as np
import pytest
import scipy.io as sio
import torch
from PIL import Image

from tsn.data import build_dataset, dataset_info
from tsn.data.imageops import label_map_edges, laplacian, thin
from tsn.data.pascal import NORMAL_CLASSES, VOC_CLASSES
from tsn.errors import ConfigError, DataError

H, W = 12, 16
IDS = ("2008_000001", "2008_000002")
PERSON_CTX, SKY_CTX, TABLE_CTX = 284, 360, 397  # Context ids: person, sky (no normals), table


def _struct(fields, rows):
    arr = np.zeros((1, len(rows)), dtype=[(f, "O") for f in fields])
    for i, row in enumerate(rows):
        for f, v in zip(fields, row):
            arr[0, i][f] = v
    return arr


def _anno(objects):
    """PASCAL-Part ``anno`` struct: objects(class, class_ind, mask, parts(part_name, mask))."""
    objs = []
    for cls, ind, mask, parts in objects:
        p = _struct(("part_name", "mask"), parts) if parts else np.zeros((0, 0))
        objs.append((cls, np.array([[ind]], np.uint8), mask.astype(np.uint8), p))
    anno = np.zeros((1, 1), dtype=[("imname", "O"), ("objects", "O")])
    anno[0, 0]["imname"] = "x"
    anno[0, 0]["objects"] = _struct(("class", "class_ind", "mask", "parts"), objs)
    return {"anno": anno}


def _box(r0, r1, c0, c1):
    m = np.zeros((H, W), bool)
    m[r0:r1, c0:c1] = True
    return m


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("pascal") / "PASCAL_MT"  # the tarball's top folder
    for d in ("JPEGImages", "ImageSets/Context", "pascal-context/trainval", "semseg/VOC12", "semseg/pascal-context",
              "human_parts", "normals_distill", "sal_distill"):  # fmt: skip
        (r / d).mkdir(parents=True)
    (r / "ImageSets/Context/train.txt").write_text("\n".join(IDS) + "\n")
    (r / "ImageSets/Context/val.txt").write_text(IDS[1] + "\n")
    rng = np.random.default_rng(0)
    for i in IDS:
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(r / f"JPEGImages/{i}.jpg")
        lm = np.full((H, W), SKY_CTX, np.uint16)
        lm[:, :6] = PERSON_CTX
        lm[8:, 10:] = TABLE_CTX
        sio.savemat(r / f"pascal-context/trainval/{i}.mat", {"LabelMap": lm})
        normals = np.zeros((H, W, 3), np.uint8)
        normals[..., 0], normals[..., 1], normals[..., 2] = 128, 64, 255
        normals[:, 3] = (255, 128, 128)
        Image.fromarray(normals).save(r / f"normals_distill/{i}.png")
        sal = np.zeros((H, W), np.uint8)
        sal[:4, :4], sal[4:, :2], sal[0, 15] = 128, 127, 255
        Image.fromarray(sal).save(r / f"sal_distill/{i}.png")
    seg = np.zeros((H, W), np.uint8)
    seg[:, :6], seg[0, :] = 15, 255
    seg[8:, 10:] = 11
    voc = Image.fromarray(seg, mode="P")
    voc.putpalette([v for c in range(256) for v in (c, c, c)])
    voc.save(r / f"semseg/VOC12/{IDS[0]}.png")
    Image.fromarray(np.full((H, W), 9, np.uint8)).save(r / f"semseg/pascal-context/{IDS[1]}.png")
    person = _box(0, 12, 0, 6)
    parts = [("head", _box(0, 2, 1, 4)), ("hair", _box(0, 1, 1, 4)), ("neck", _box(2, 3, 2, 3)),
             ("torso", _box(3, 6, 1, 5)), ("luarm", _box(3, 5, 0, 1)), ("llarm", _box(5, 6, 0, 1)),
             ("rhand", _box(6, 7, 5, 6)), ("luleg", _box(6, 9, 1, 3)), ("rlleg", _box(9, 11, 3, 5)),
             ("lfoot", _box(11, 12, 1, 3))]  # fmt: skip
    chair_parts = [("torso", _box(8, 12, 10, 16))]  # a non-person object with parts: ignored
    sio.savemat(r / f"human_parts/{IDS[0]}.mat", _anno([("person", 15, person, parts), ("chair", 9, _box(8, 12, 10, 16), chair_parts)]))
    # second image: a person without part annotation and a dog -> no parts anywhere
    sio.savemat(r / f"human_parts/{IDS[1]}.mat", _anno([("person", 15, person, []), ("dog", 12, _box(0, 3, 8, 12), [])]))
    return r


def test_info():
    info = dataset_info("pascal")
    assert info.num_classes == {"semseg": 21, "parts": 7} and info.edge_max_dist == 0.0075
    assert len(VOC_CLASSES) == 21 and "sal" in info.tasks
    assert len(NORMAL_CLASSES) == 170 and 427 in NORMAL_CLASSES and PERSON_CTX in NORMAL_CLASSES
    assert SKY_CTX not in NORMAL_CLASSES and 431 not in NORMAL_CLASSES  # sky, unknown


def test_labels_value_by_value(root):
    ds = build_dataset("pascal", root=root.parent, split="train", size="original")  # finds PASCAL_MT/
    assert len(ds) == 2
    s = ds[0]
    assert s["image"].shape == (3, H, W) and s["meta"]["id"] == IDS[0] and s["meta"]["size"] == (H, W)
    # semseg from VOC12 (palette indices, 255 kept); the second image falls back to pascal-context/
    seg = np.zeros((H, W), np.int64)
    seg[:, :6], seg[0, :] = 15, 255
    seg[8:, 10:] = 11
    assert torch.equal(s["semseg"], torch.from_numpy(seg))
    assert (ds[1]["semseg"] == 9).all()
    # parts: person pixels outside every part are 0, the chair's parts are ignored
    exp = np.zeros((H, W), np.int64)
    for m, v in [(_box(0, 2, 1, 4), 1), (_box(0, 1, 1, 4), 1), (_box(2, 3, 2, 3), 2), (_box(3, 6, 1, 5), 2),
                 (_box(3, 5, 0, 1), 3), (_box(5, 6, 0, 1), 4), (_box(6, 7, 5, 6), 4), (_box(6, 9, 1, 3), 5),
                 (_box(9, 11, 3, 5), 6), (_box(11, 12, 1, 3), 6)]:  # fmt: skip
        exp[m] = v
    assert torch.equal(s["parts"], torch.from_numpy(exp))
    assert (ds[1]["parts"] == 255).all()
    # normals: decoded 2x/255-1, unit length, only on Context classes with normals (person, table; not sky)
    n = s["normals"]
    v = np.array([2 * 128 / 255 - 1, 2 * 64 / 255 - 1, 1.0])
    v /= np.linalg.norm(v)
    w = np.array([1.0, 2 * 128 / 255 - 1, 2 * 128 / 255 - 1])
    w /= np.linalg.norm(w)
    assert torch.allclose(n[:, 5, 0], torch.tensor(v, dtype=torch.float32), atol=1e-6)
    assert torch.allclose(n[:, 5, 3], torch.tensor(w, dtype=torch.float32), atol=1e-6)
    assert torch.allclose(n[:, 10, 12], torch.tensor(v, dtype=torch.float32), atol=1e-6)  # table
    assert (n[:, :8, 6:] == 0).all()  # sky: no normals
    # saliency: x/255 > 0.5
    sal = s["sal"][0]
    assert (sal[:4, :4] == 1).all() and (sal[4:, :2] == 0).all() and sal[0, 15] == 1 and sal.sum() == 17
    # edges: the thinned non-zero Laplacian of the label map
    lm = sio.loadmat(root / f"pascal-context/trainval/{IDS[0]}.mat")["LabelMap"]
    e = s["edge"][0].numpy()
    assert np.array_equal(e, label_map_edges(lm)) and set(np.unique(e)) == {0.0, 1.0}
    band = np.abs(laplacian(lm)) > 0
    assert (e <= band).all() and e[1:, 5:7].sum(1).min() == 1  # the person/sky boundary: 1 px, every row but the end


def test_thin_matches_reference_example():
    """scikit-image's documented ``thin`` example, which the community's edges use."""
    sq = np.zeros((7, 7), np.uint8)
    sq[1:-1, 2:-2] = 1
    sq[0, 1] = 1
    exp = np.zeros((7, 7), np.uint8)
    exp[0, 1], exp[1, 2], exp[2:5, 3] = 1, 1, 1
    assert np.array_equal(thin(sq).astype(np.uint8), exp)
    bar = np.zeros((9, 9), bool)
    bar[3:6, 1:8] = True  # 3 px thick
    t = thin(bar)
    assert t.sum() >= 5 and t[:, 2:7].sum(0).max() == 1 and np.array_equal(thin(t), t)


def test_tasks_subset_training_crop_and_eval_pad(root):
    ds = build_dataset("pascal", root=root, split="val", tasks=["semseg", "sal"], size=20)
    s = ds[0]
    assert set(s) == {"image", "semseg", "sal", "meta"}
    assert s["semseg"].shape == (20, 20) and s["meta"]["valid"] == (H, W)
    assert (s["semseg"][H:] == 255).all() and (s["sal"][0, :, W:] == 255).all()
    torch.manual_seed(0)
    tr = build_dataset("pascal", root=root, split="train", size=10, augment=True)
    b = tr[0]
    assert b["image"].shape == (3, 10, 10) and b["parts"].shape == (10, 10)


def test_clear_errors(root, tmp_path):
    with pytest.raises(DataError, match="JPEGImages.*PASCAL_MT.tgz"):
        build_dataset("pascal", root=tmp_path)
    with pytest.raises(DataError, match="no root"):
        build_dataset("pascal", root=None)
    with pytest.raises(ConfigError, match="no split 'test'"):
        build_dataset("pascal", root=root, split="test")
    with pytest.raises(ConfigError, match="no task.*depth"):
        build_dataset("pascal", root=root, tasks=["depth"])
    (root / "sal_distill" / f"{IDS[1]}.png").rename(root / "sal_distill" / "moved.png")
    try:
        with pytest.raises(DataError, match=f"sal_distill/{IDS[1]}.png"):
            build_dataset("pascal", root=root, split="val")
        build_dataset("pascal", root=root, split="val", tasks=["semseg"])  # sal not needed
    finally:
        (root / "sal_distill" / "moved.png").rename(root / "sal_distill" / f"{IDS[1]}.png")


def test_edge_label_seism_is_thin_seg2bmap_of_the_label_map(root):
    """``edge_label=seism``: SEISM's ground truth (one-sided seg2bmap, thinned),
    for scoring as the paper's benchmark does; the default stays the Laplacian."""
    from scipy import io as sio

    from tsn.metrics.boundary import seg2bmap, thin

    lap = build_dataset("pascal", root=root.parent, split="train", size="original", tasks=["edge"])[0]["edge"][0]
    ds = build_dataset("pascal", root=root.parent, split="train", size="original", tasks=["edge"], edge_label="seism")
    s = ds[0]
    lm = sio.loadmat(str(root / "pascal-context" / "trainval" / f"{IDS[0]}.mat"))["LabelMap"]
    exp = thin(seg2bmap(lm)).astype(np.float32)
    assert torch.equal(s["edge"][0], torch.from_numpy(exp)) and exp.sum() > 0
    assert not torch.equal(lap, s["edge"][0])  # the two conventions differ (two-sided vs one-sided)
    with pytest.raises(ConfigError, match="edge_label: 'canny' is not valid; valid: laplacian, seism"):
        build_dataset("pascal", root=root.parent, split="train", tasks=["edge"], edge_label="canny")
