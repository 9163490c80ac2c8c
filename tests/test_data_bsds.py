"""BSDS500 (``bsds``) on real data: the benchmark's own five test images and their
ground truth (tests/fixtures/bsds, copied from the release's bench/data/).

Layout search, samples at the original size, training labels checked pixel by pixel
against the .mat files, every annotator reaching the evaluation at the original size,
the ``hed`` augmentation (determinism per seed, labels moved with the image), the
one-line errors, the download (no network: a fake server), and one tiny training run
through ``python -m train``."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio
import torch
from PIL import Image

from tsn.data import build_dataset, collate, dataset_info
from tsn.data import transforms as T
from tsn.data.bsds import find_layout
from tsn.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "bsds"
IDS = ("2018", "3063", "5096", "6046", "8068")


def boundaries(i: str) -> np.ndarray:
    """[K,H,W] uint8 straight from the .mat (scipy only, not the loader)."""
    g = sio.loadmat(FIXTURE / "groundTruth" / "test" / f"{i}.mat")["groundTruth"]
    return np.stack([g[0, k]["Boundaries"][0, 0] for k in range(g.shape[1])]).astype(np.uint8)


def link_layout(top: Path, splits: dict[str, tuple[str, ...]]) -> Path:
    """A BSDS500 layout at ``top`` whose files are links to the fixture's (split -> ids)."""
    for split, ids in splits.items():
        for d, ext in (("images", "jpg"), ("groundTruth", "mat")):
            (top / d / split).mkdir(parents=True, exist_ok=True)
            for i in ids:
                src = FIXTURE / d / "test" / f"{i}.{ext}"
                (top / d / split / f"{i}.{ext}").symlink_to(src)
    return top


def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


# ---------------------------------------------------------------- layout


def test_info():
    info = dataset_info("bsds")
    assert info.tasks == ("edge",) and info.splits == ("train", "val", "test", "trainval")
    assert info.edge_max_dist == 0.0075 and info.num_classes == {}


def test_layout_is_found_from_the_folder_and_from_its_parents(tmp_path, monkeypatch):
    data = link_layout(tmp_path / "BSR" / "BSDS500" / "data", {"test": IDS})
    # the archive's bench/data has images/ and groundTruth/ without split folders: not a layout
    for d in ("images", "groundTruth"):
        (tmp_path / "BSR" / "bench" / "data" / d).mkdir(parents=True)
    (tmp_path / "BSR" / ".git" / "x").mkdir(parents=True)
    for root in (data, data.parent, tmp_path / "BSR", tmp_path):
        assert find_layout(root) == data
    ds = build_dataset("bsds", root=tmp_path, split="test", size="original")
    assert ds.root == data and ds.ids == list(IDS)
    assert find_layout(FIXTURE) == FIXTURE
    monkeypatch.setenv("TSN_BSDS_ROOT", str(tmp_path / "BSR"))
    assert build_dataset("bsds", split="test").root == data
    deep = tmp_path / "a"
    (deep / "b").mkdir(parents=True)
    (deep / "b" / "c").symlink_to(tmp_path)  # BSR/BSDS500/data 5 levels below: too deep
    with pytest.raises(DataError) as e:
        find_layout(deep)
    assert "no BSDS500 layout in" in one_line(e) and "nor up to 3 folders below it" in str(e.value)
    assert "images/{train,val,test}/<id>.jpg" in str(e.value) and "BSR_bsds500.tgz" in str(e.value)


def test_trainval_is_train_then_val(tmp_path):
    link_layout(tmp_path, {"train": IDS[:3], "val": IDS[3:]})
    tv = build_dataset("bsds", root=tmp_path, split="trainval", size="original")
    assert [(p, i) for p, i in tv.items] == [("train", i) for i in IDS[:3]] + [("val", i) for i in IDS[3:]]
    assert len(build_dataset("bsds", root=tmp_path, split="val", size="original")) == 2
    assert tv[4]["meta"]["id"] == IDS[4]


# ---------------------------------------------------------------- samples and labels


def test_samples_at_original_size_carry_every_annotator():
    ds = build_dataset("bsds", root=FIXTURE, split="test", size="original")
    assert len(ds) == 5 and ds.ids == list(IDS)
    shapes = set()
    for k, i in enumerate(IDS):
        s = ds[k]
        w, h = Image.open(FIXTURE / "images" / "test" / f"{i}.jpg").size
        stack = boundaries(i)
        assert s["image"].shape == (3, h, w) and s["edge"].shape == (1, h, w) and s["meta"]["size"] == (h, w)
        target = s["meta"]["eval_targets"]["edge"]
        assert target.dtype == torch.uint8 and np.array_equal(target.numpy(), stack)
        assert s["meta"]["annotators"] == stack.shape[0] and s["meta"]["id"] == i
        shapes.add((h, w))
    assert shapes == {(481, 321), (321, 481)}
    assert [boundaries(i).shape[0] for i in IDS] == [5, 6, 5, 5, 5]


def test_consensus_label_by_hand():
    """3063: 6 annotators, 321x481. Pixels found by hand in its .mat."""
    ds = build_dataset("bsds", root=FIXTURE, split="test", size="original", tasks=["edge"])
    e = ds[1]["edge"][0]
    b = boundaries("3063")
    marked = {(0, 0): [], (0, 92): [4], (82, 235): [0, 2], (82, 236): [0, 1, 2], (82, 237): [0, 1, 2, 4],
              (83, 252): [0, 1, 3, 4, 5], (84, 258): [0, 1, 2, 3, 4, 5]}
    for (y, x), who in marked.items():
        assert list(np.flatnonzero(b[:, y, x])) == who
    # consensus 0.5: >= 3 of 6 -> 1, none -> 0, 1 or 2 of 6 -> 255 (ignored)
    exp = {(0, 0): 0, (0, 92): 255, (82, 235): 255, (82, 236): 1, (82, 237): 1, (83, 252): 1, (84, 258): 1}
    assert {p: int(e[p]) for p in exp} == exp
    # the whole map from the annotator counts (bincount of 3063: 148612 / 4043 / 708 / 550 / 334 / 131 / 23)
    assert int((e == 0).sum()) == 148612 and int((e == 255).sum()) == 4043 + 708 and int((e == 1).sum()) == 1038
    for consensus, exp in ((0.6, {(82, 236): 255, (82, 237): 1}), (1.0, {(83, 252): 255, (84, 258): 1}),
                           (0.1, {(0, 92): 1, (82, 235): 1})):
        e2 = build_dataset("bsds", root=FIXTURE, split="test", size="original", consensus=consensus)[1]["edge"][0]
        assert {p: int(e2[p]) for p in exp} == exp, consensus
        if consensus == 0.1:  # below 1/K: every marked pixel is a boundary, nothing ignored
            assert int((e2 == 255).sum()) == 0
    # 2018 has 5 annotators: 0.5 means 3 of 5 (5/2 rounded up)
    e5 = ds[0]["edge"][0]
    assert int((e5 == 1).sum()) == 701 + 291 + 43 and int((e5 == 255).sum()) == 7470 + 1683


def test_union_and_single_annotator_labels():
    b = boundaries("3063")
    anyl = build_dataset("bsds", root=FIXTURE, split="test", size="original", edge_label="any")[1]["edge"][0]
    assert set(anyl.unique().tolist()) == {0.0, 1.0}
    assert int(anyl[0, 92]) == 1 and int(anyl[0, 0]) == 0
    assert np.array_equal(anyl.numpy(), b.any(0).astype(np.float32))
    for k in (0, 4):
        one = build_dataset("bsds", root=FIXTURE, split="test", size="original", edge_label=k)[1]["edge"][0]
        assert np.array_equal(one.numpy(), b[k].astype(np.float32))
    assert int(build_dataset("bsds", root=FIXTURE, split="test", size="original", edge_label=4)[1]["edge"][0, 0, 92]) == 1
    # annotator 5 exists in 3063 (6 annotators), not in 2018 (5): no label there
    six = build_dataset("bsds", root=FIXTURE, split="test", size="original", edge_label=5)
    assert (six[0]["edge"] == 255).all() and np.array_equal(six[1]["edge"][0].numpy(), b[5].astype(np.float32))


# ---------------------------------------------------------------- evaluation at the original size


class Recorder:
    """A MultiTaskMetrics stand-in that keeps what it is given."""

    def __init__(self):
        self.seen = []

    def update(self, preds, targets):
        self.seen.append(({k: v.clone() for k, v in preds.items()}, {k: v.clone() for k, v in targets.items()}))


def _score(ds, n=2):
    from tsn.engine.evaluate import score

    batch = collate([ds[i] for i in range(n)])
    preds = {"edge": torch.randn(n, 1, *batch["edge"].shape[-2:])}
    rec = Recorder()
    score(rec, preds, batch)
    return batch, preds, rec.seen


@pytest.mark.parametrize("how", ["pad_shrunk", "eval_size", "original", "release"])
def test_every_annotator_reaches_the_metric_at_the_original_size(how):
    from tsn.engine.geometry import eval_transform

    kw = {"size": 320} if how in ("pad_shrunk", "release") else {"size": 64, "eval_size": 481} if how == "eval_size" \
        else {"size": "original"}
    ds = build_dataset("bsds", root=FIXTURE, split="test", **kw)
    if how == "release":
        ds.transform = eval_transform("release", ds.size)
    n = 2 if how != "original" else 1  # 2018 is 481x321, 3063 321x481: batch them only on a canvas
    batch, preds, seen = _score(ds, n)
    if how == "eval_size":
        assert batch["image"].shape[-2:] == (481, 481) and batch["meta"][0]["valid"] == (481, 321)
    assert len(seen) == n
    for i, (p, t) in enumerate(seen):
        stack = torch.from_numpy(boundaries(IDS[i]))
        assert torch.equal(t["edge"], stack[None]), how  # [1,K,H,W]: K annotators, original size
        assert p["edge"].shape == (1, 1, *stack.shape[-2:])
        if how in ("eval_size", "original"):  # nothing resampled: the prediction's own pixels
            h, w = stack.shape[-2:]
            assert torch.equal(p["edge"][0], preds["edge"][i][:, :h, :w])


def test_collate_pads_annotator_stacks_with_no_label_channels():
    a = {"edge": torch.zeros(5, 4, 6), "meta": {}}
    b = {"edge": torch.ones(6, 4, 6), "meta": {}}
    out = collate([a, b])["edge"]
    assert out.shape == (2, 6, 4, 6) and (out[0, 5] == 255).all() and (out[0, :5] == 0).all()
    with pytest.raises(ConfigError, match="different shapes"):
        collate([a, {"edge": torch.zeros(5, 4, 7), "meta": {}}])


# ---------------------------------------------------------------- augmentation


def test_hed_augmentation_is_seeded_and_keeps_label_values():
    ds = build_dataset("bsds", root=FIXTURE, split="test", size=96, augment=True, augmentation="hed")
    assert "eval_targets" not in ds[0]["meta"]  # training samples carry only their (moved) label
    out = {}
    for seed in (0, 0, 1, 2, 3):
        torch.manual_seed(seed)
        s = ds[1]
        assert s["image"].shape == (3, 96, 96) and s["edge"].shape == (1, 96, 96)
        assert set(s["edge"].unique().tolist()) <= {0.0, 1.0, 255.0}
        out.setdefault(seed, []).append(s)
    a, b = out[0]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["edge"], b["edge"])
    assert len({out[k][0]["image"].sum().item() for k in (0, 1, 2, 3)}) == 4
    # the seeded training dataset gives the same sample for the same (seed, epoch, index)
    from tsn.engine.sampling import SeededDataset

    x, y = SeededDataset(ds, 7), SeededDataset(ds, 7)
    assert torch.equal(x[2]["edge"], y[2]["edge"]) and torch.equal(x[2]["image"], y[2]["image"])


def _coordinate_sample(h: int, w: int) -> dict:
    """The real image's geometry, with contents that say where each pixel came from:
    image channels (x + .5) / w and (y + .5) / h (bilinear reproduces them exactly),
    label 1000 + y * w + x (nearest keeps it; 255 stays the pad value)."""
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    img = torch.stack([(xs + 0.5) / w, (ys + 0.5) / h, torch.zeros(h, w)]).float()
    return {"image": img, "edge": (1000 + ys * w + xs).float()[None], "meta": {}}


@pytest.mark.parametrize("seed", range(6))
def test_hed_labels_move_with_the_image(seed):
    """Each label pixel comes from within 1.5 source pixels of where the image's pixel came from
    (nearest vs bilinear, scale 0.5 then rotation), for the preset's random draws."""
    h, w = 481, 321  # 2018's size
    torch.manual_seed(seed)
    t = T.hed_transform((160, 160))
    s = t(_coordinate_sample(h, w))
    lab = s["edge"][0]
    keep = lab != 255
    # away from the source's border, where the bilinear ramp meets the fill
    x_img, y_img = s["image"][0] * w, s["image"][1] * h
    keep &= (x_img > 2) & (x_img < w - 2) & (y_img > 2) & (y_img < h - 2)
    assert keep.float().mean() > 0.2
    idx = (lab[keep] - 1000).long()
    x_lab, y_lab = idx % w + 0.5, idx // w + 0.5
    d = torch.maximum((x_lab - x_img[keep]).abs(), (y_lab - y_img[keep]).abs())
    assert float(d.max()) <= 1.5 + 1e-3, float(d.max())


def test_rotation_keeps_only_valid_pixels_or_marks_the_corners():
    ds = build_dataset("bsds", root=FIXTURE, split="test", size="original", edge_label="any")
    s = ds.load(0)
    assert not (s["edge"] == 255).any()
    for k in range(16):
        a = 22.5 * k
        r = T.rotate(s, a)
        assert not (r["edge"] == 255).any(), a  # the largest valid rectangle: no corner pixel
        hr, wr = T.largest_rotated_rect(481, 321, a)
        assert abs(r["edge"].shape[-2] - hr) <= 2 and abs(r["edge"].shape[-1] - wr) <= 2
        if k % 4:
            c = T.rotate(s, a, crop_valid=False)
            assert (c["edge"] == 255).any() and c["edge"].shape[-1] > r["edge"].shape[-1]
            assert (c["edge"] != 255).sum() == pytest.approx(481 * 321, rel=0.02)  # every pixel kept once
    r90 = T.rotate(s, 90)
    assert torch.equal(r90["edge"], torch.rot90(s["edge"], 1, dims=(-2, -1)))
    # the exact quarter turns go the way the resampled angles go
    by_grid = T._warp(s["edge"], T._rotation_grid((481, 321), 90.0, (321, 481)), "nearest", 255.0)
    assert torch.equal(by_grid, r90["edge"])
    assert torch.equal(T.rotate(s, 180)["edge"], s["edge"].flip(-1).flip(-2))


# ---------------------------------------------------------------- errors


def test_errors_are_one_line(tmp_path):
    link_layout(tmp_path / "nogt", {"test": IDS[:1]})
    shutil.rmtree(tmp_path / "nogt" / "groundTruth")
    with pytest.raises(DataError) as e:
        build_dataset("bsds", root=tmp_path / "nogt")
    assert "has images/ but no groundTruth/ beside it" in one_line(e)

    link_layout(tmp_path / "miss", {"test": IDS})
    (tmp_path / "miss" / "groundTruth" / "test" / "3063.mat").unlink()
    with pytest.raises(DataError) as e:
        build_dataset("bsds", root=tmp_path / "miss", split="test")
    assert "1 of 5 images of test have no ground truth, first 3063" in one_line(e)

    with pytest.raises(DataError) as e:
        build_dataset("bsds", root=FIXTURE, split="train")
    assert "no folder" in one_line(e) and "images/train" in str(e.value)

    bad = link_layout(tmp_path / "bad", {"test": IDS[:1]})
    gt = bad / "groundTruth" / "test" / f"{IDS[0]}.mat"
    cases = [
        ({"LabelMap": np.zeros((4, 4))}, "no groundTruth (BSDS500) or gt_seg (SEISM) cell in it (variables: LabelMap)"),
        ({"groundTruth": np.zeros((481, 321))}, "groundTruth is not a cell of structs with Segmentation / Boundaries"),
        ({"groundTruth": np.array([[{"Segmentation": np.zeros((481, 321), np.uint16)}]], dtype=object)},
         "annotator 1 of 1 has no Boundaries"),
        ({"groundTruth": np.array([[{"Boundaries": np.zeros((321, 481), bool)}]], dtype=object)},
         "the annotators' Boundaries are 321x481, but the image is 481x321"),
    ]
    for content, match in cases:
        gt.unlink()
        sio.savemat(gt, content)
        with pytest.raises(DataError) as e:
            build_dataset("bsds", root=bad, split="test")[0]
        assert match in one_line(e), str(e.value)
    gt.write_bytes(b"not a mat file")
    with pytest.raises(DataError, match="unreadable .mat file"):
        build_dataset("bsds", root=bad, split="test")[0]


def test_wrong_task_and_options_are_one_line_config_errors():
    from tsn.config import load_config
    from tsn.validate import check_config

    with pytest.raises(ConfigError) as e:
        build_dataset("bsds", root=FIXTURE, split="test", tasks=["edge", "semseg"])
    assert one_line(e) == "dataset 'bsds' has no task(s) semseg; available: edge"
    cfg = load_config(ROOT / "configs" / "bsds" / "tsn.yaml", ["data.tasks=[edge, normals]"])
    with pytest.raises(ConfigError) as e:
        check_config(cfg)
    assert one_line(e) == "data.tasks: dataset 'bsds' has no normals; it has edge"
    for opts, match in (({"edge_label": "median"}, "edge_label: 'median' is not valid; valid: consensus, any"),
                        ({"edge_label": -1}, "edge_label: -1 is not valid"),
                        ({"consensus": 0}, "consensus must be in (0, 1]"),
                        ({"consensus": 1.5}, "consensus must be in (0, 1]"),
                        ({"eval_size": 4}, "eval_size: size 4x4 is below the minimum of 8 px a side"),
                        ({"augmentation": "hedd"}, "unknown augmentation 'hedd'; valid: default, release, hed"),
                        ({"annotators": 3}, "unknown option(s) for dataset 'bsds': annotators")):
        with pytest.raises(ConfigError) as e:
            build_dataset("bsds", root=FIXTURE, split="test", **opts)
        assert match in one_line(e), str(e.value)
    with pytest.raises(ConfigError, match="cannot turn the normals"):
        T.rotate({"image": torch.zeros(3, 8, 8), "normals": torch.zeros(3, 8, 8)}, 22.5)
    with pytest.raises(ConfigError) as e:  # at build time, not at the first draw of a rotation
        build_dataset("synthetic", split="train", size=16, length=1, augment=True, augmentation="hed")
    assert "augmentation 'hed' rotates images and cannot turn the vectors of normals" in one_line(e)
    assert build_dataset("synthetic", split="train", size=16, length=1, augment=True, augmentation="hed",
                         tasks=["edge", "semseg", "depth"])[0]["semseg"].shape == (16, 16)


def test_configs_parse():
    from tsn.config import load_config
    from tsn.validate import check_config

    for name, model in (("tsn", "tsn"), ("single_task", "single_task")):
        cfg = check_config(load_config(ROOT / "configs" / "bsds" / f"{name}.yaml"))
        assert cfg.model.name == model and cfg.data.name == "bsds" and cfg.data.tasks == ["edge"]
        assert (cfg.data.train_split, cfg.data.val_split, cfg.data.test_split) == ("trainval", "test", "test")
        assert cfg.data.options["augmentation"] == "hed" and 160 <= cfg.data.size <= 320
        assert cfg.eval.options["edge"] == {"protocol": "bsds", "max_dist": 0.0075}
        assert cfg.train.val_every >= cfg.train.epochs  # the test split is scored once, on the last model
    # eval_size is the canvas of evaluation samples (training crops stay data.size); original: none
    ev = build_dataset("bsds", root=FIXTURE, split="test", size=64, eval_size="original")
    tr = build_dataset("bsds", root=FIXTURE, split="test", size=64, eval_size=481, augment=True)
    assert ev[0]["image"].shape == (3, 481, 321) and tr[0]["image"].shape == (3, 64, 64)


# ---------------------------------------------------------------- download


def _archive(tmp_path: Path) -> bytes:
    """A tiny BSR_bsds500.tgz: BSR/BSDS500/data with one real image and its ground truth, and BSR/bench."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for d, ext in (("images", "jpg"), ("groundTruth", "mat")):
            tar.add(FIXTURE / d / "test" / f"2018.{ext}", f"BSR/BSDS500/data/{d}/test/2018.{ext}")
        tar.add(FIXTURE / "README.md", "BSR/bench/README.md")
    return buf.getvalue()


class FakeServer:
    """urlopen stand-in serving ``body``; honours Range unless told not to; can stop after ``cut`` bytes."""

    def __init__(self, body: bytes, ranges: bool = True, cut: int | None = None):
        self.body, self.ranges, self.cut, self.requests = body, ranges, cut, []

    def __call__(self, req, timeout=None):
        rng = req.get_header("Range")
        self.requests.append(rng)
        start = int(rng[len("bytes="):-1]) if rng and self.ranges else 0
        if start >= len(self.body) and rng:
            raise urllib.error.HTTPError(req.full_url, 416, "Range Not Satisfiable", {}, None)
        server, cut = self, self.cut

        class Resp:
            status = 206 if start else 200
            headers = {"Content-Length": str(len(server.body) - start),
                       **({"Content-Range": f"bytes {start}-{len(server.body) - 1}/{len(server.body)}"} if start else {})}

            def __init__(self):
                self.data = io.BytesIO(server.body[start:])
                self.sent = 0

            def read(self, n=-1):
                if cut is not None and self.sent >= cut:
                    raise ConnectionResetError("connection reset by peer")
                chunk = self.data.read(n if cut is None else min(n, cut - self.sent))
                self.sent += len(chunk)
                return chunk

            def getcode(self):
                return self.status

            def close(self):
                pass

            def __enter__(self):
                return self

            def __exit__(self, *a):
                pass

        return Resp()


def test_download_resumes_verifies_and_extracts(tmp_path, monkeypatch, capsys):
    from tsn.data import download as dl

    body = _archive(tmp_path)
    assert dl.SOURCES["bsds"].size == 70_763_455 and dl.SOURCES["bsds"].folder == "BSR"
    monkeypatch.setitem(dl.SOURCES, "bsds", dl.Source(dl.SOURCES["bsds"].url, "BSR", len(body), dl.bsds.find_layout))
    monkeypatch.setattr(dl, "CHUNK", 1000)
    server = FakeServer(body, cut=3000)
    monkeypatch.setattr(dl, "urlopen", server)
    root = tmp_path / "data"
    assert dl.main(["bsds", "--root", str(root)]) == 2  # the connection drops after 3000 bytes
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "stopped at 3000 of" in err and "run the same command again to resume" in err
    part = root / "BSR_bsds500.tgz.part"
    assert part.stat().st_size == 3000 and not (root / "BSR").exists()
    server.cut = None
    assert dl.main(["bsds", "--root", str(root)]) == 0
    assert server.requests == [None, "bytes=3000-"]
    assert not part.exists() and not (root / "BSR_bsds500.tgz").exists()  # archive removed after extraction
    assert [p.name for p in root.iterdir()] == ["BSR"]  # no temporary folder left
    ds = build_dataset("bsds", root=root, split="test", size="original")
    assert ds.root == root / "BSR" / "BSDS500" / "data" and len(ds) == 1
    assert np.array_equal(ds[0]["meta"]["eval_targets"]["edge"].numpy(), boundaries("2018"))
    assert dl.main(["bsds", "--root", str(root)]) == 0 and "nothing to do" in capsys.readouterr().err


def test_download_restarts_when_the_server_ignores_ranges(tmp_path, monkeypatch):
    from tsn.data import download as dl

    body = _archive(tmp_path)
    monkeypatch.setitem(dl.SOURCES, "bsds", dl.Source("https://example.org/BSR_bsds500.tgz", "BSR", len(body)))
    root = tmp_path / "r"
    root.mkdir()
    (root / "BSR_bsds500.tgz.part").write_bytes(b"x" * 100)  # not even a prefix of the archive
    server = FakeServer(body, ranges=False)
    monkeypatch.setattr(dl, "urlopen", server)
    assert dl.download("bsds", root, keep_archive=True) == root / "BSR"
    assert server.requests == ["bytes=100-"] and (root / "BSR_bsds500.tgz").read_bytes() == body


def test_truncated_or_damaged_archives_are_refused(tmp_path, monkeypatch):
    from tsn.data import download as dl

    body = _archive(tmp_path)
    # the server's file is shorter than the published archive: refused before anything is written
    monkeypatch.setattr(dl, "urlopen", FakeServer(body[:-500]))
    root = tmp_path / "a"
    with pytest.raises(DataError) as e:
        dl.download("bsds", root)
    assert f"is {len(body) - 500} bytes on the server but the published archive is 70763455" in one_line(e)
    assert f"--expected-size {len(body) - 500}" in str(e.value) and not (root / "BSR").exists()
    # a local file:// URL without a size to check against: a truncated gzip fails at extraction
    cut = tmp_path / "cut.tgz"
    cut.write_bytes(body[: len(body) // 2])
    monkeypatch.setattr(dl, "urlopen", dl.urllib.request.urlopen)
    monkeypatch.setitem(dl.SOURCES, "bsds", dl.Source(cut.as_uri(), "BSR"))
    with pytest.raises(DataError) as e:
        dl.download("bsds", tmp_path / "b")
    assert "is damaged or incomplete" in one_line(e) and "delete it" in str(e.value)
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["cut.tgz"]  # no half-extracted folder
    # an archive already there that is not the published size
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "BSR_bsds500.tgz").write_bytes(body)
    monkeypatch.setitem(dl.SOURCES, "bsds", dl.Source(dl.bsds.URL, "BSR", dl.bsds.ARCHIVE_SIZE))
    with pytest.raises(DataError) as e:
        dl.download("bsds", tmp_path / "c")
    assert f"is {len(body)} bytes, not 70763455" in one_line(e)


# ---------------------------------------------------------------- end to end


@pytest.mark.slow
def test_one_epoch_through_python_m_train(tmp_path, capsys, monkeypatch):
    """The fixture as train and test split, a tiny TSN, HED augmentation, 64 px crops;
    validation on 481x481 canvases scored against every annotator."""
    from tsn.metrics.edge import EdgeMetric
    from train.__main__ import main

    seen = []
    update = EdgeMetric.update

    def record(self, pred, target):
        seen.append((tuple(pred.shape), tuple(target.shape)))
        return update(self, pred, target)

    monkeypatch.setattr(EdgeMetric, "update", record)

    out = tmp_path / "run"
    args = [str(ROOT / "configs" / "bsds" / "tsn.yaml"), "--out", str(out), "--json",
            "--set", f"data.root={FIXTURE}", "--set", "data.train_split=test", "--set", "data.size=64",
            "--set", "model.pretrained=false", "--set", "model.encoder_width=8",
            "--set", "model.skip_widths=[8, 8, 16, 32, 64]", "--set", "model.up_widths=[32, 16, 16, 8, 8]",
            "--set", "model.options.tsn.code.dim=8", "--set", "model.options.tsn.embedding.n_fc=1",
            "--set", "train.epochs=1", "--set", "train.val_every=1", "--set", "train.batch_size=2",
            "--set", "train.device=cpu", "--set", "train.images_every_val=0", "--set", "eval.batch_size=5",
            "--set", "eval.options.edge.thresholds=5", "--set", "eval.options.edge.val_thresholds=3"]
    assert main(args) == 0, capsys.readouterr().err
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["dataset"] == "bsds" and res["steps"] == 2 and set(res["val"]["edge"]) >= {"odsF", "oisF", "AP"}
    assert (out / "checkpoints" / "last.pt").is_file()
    # two validations (after the epoch, then the final one), each image once, with all its annotators
    k = {i: boundaries(i).shape for i in IDS}
    assert sorted(seen) == sorted(2 * [((1, 1, *k[i][1:]), (1, *k[i])) for i in IDS])
