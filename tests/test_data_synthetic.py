"""The embedded generator: determinism, format, and that every label agrees
with the same geometry (checked across tasks, not against stored answers)."""

import numpy as np
import pytest
import torch

from tsn.data import build_dataset, collate, dataset_info
from tsn.data.scenes import CLASS_NAMES, N_ROOM, PERSON, generate, render, sample_scene
from tsn.data.synthetic import scene_arrays

SIZE = (64, 64)


@pytest.fixture(scope="module")
def scenes():
    return [scene_arrays(0, "train", i, SIZE) for i in range(12)]


def test_deterministic_and_splits_disjoint():
    a = scene_arrays(3, "train", 5, SIZE)
    b = scene_arrays(3, "train", 5, SIZE)
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert not np.array_equal(a["image"], scene_arrays(3, "val", 5, SIZE)["image"])
    assert not np.array_equal(a["image"], scene_arrays(4, "train", 5, SIZE)["image"])
    assert not np.array_equal(a["image"], scene_arrays(3, "train", 6, SIZE)["image"])


def test_sample_format():
    ds = build_dataset("synthetic", split="val", size=48, length=3)
    s = ds[1]
    assert s["image"].shape == (3, 48, 48) and s["image"].dtype == torch.float32
    assert s["edge"].shape == (1, 48, 48) and set(s["edge"].unique().tolist()) <= {0.0, 1.0}
    assert s["sal"].shape == (1, 48, 48) and set(s["sal"].unique().tolist()) <= {0.0, 1.0}
    assert s["semseg"].dtype == torch.long and s["semseg"].shape == (48, 48)
    assert int(s["semseg"].max()) < len(CLASS_NAMES)
    assert s["parts"].dtype == torch.long
    assert s["normals"].shape == (3, 48, 48) and s["depth"].shape == (1, 48, 48)
    assert s["meta"]["size"] == (48, 48) and s["meta"]["index"] == 1
    assert len(ds) == 3 and dataset_info("synthetic").num_classes["semseg"] == 10
    only = build_dataset("synthetic", split="val", size=48, length=3, tasks=["depth"])[1]
    assert set(only) == {"image", "depth", "meta"}
    assert torch.equal(only["depth"], s["depth"])


def test_labels_agree_with_each_other(scenes):
    for a in scenes:
        sky = a["semseg"] == 0
        n = np.linalg.norm(a["normals"], axis=0)
        assert np.allclose(n[~sky], 1, atol=1e-4) and (n[sky] == 0).all()
        assert ((a["depth"] > 0) == ~sky).all()
        inst = a["instances"]
        # every edge pixel sits on an instance boundary
        diff = np.zeros_like(a["edge"])
        diff[:, :-1] |= inst[:, :-1] != inst[:, 1:]
        diff[:, 1:] |= inst[:, :-1] != inst[:, 1:]
        diff[:-1] |= inst[:-1] != inst[1:]
        diff[1:] |= inst[:-1] != inst[1:]
        assert (a["edge"] <= diff).all()
        # every boundary between two 4-neighbours is marked on exactly one side
        h = inst[:, :-1] != inst[:, 1:]
        assert (a["edge"][:, :-1][h] | a["edge"][:, 1:][h]).all()
        # saliency is exactly one visible object instance, the largest
        if a["sal"].any():
            ids = np.unique(inst[a["sal"]])
            assert len(ids) == 1 and ids[0] >= N_ROOM
            counts = np.bincount(inst.ravel())
            assert counts[ids[0]] == counts[N_ROOM:].max()
        # parts: all 255 without a visible person, else parts exactly on person pixels
        person = a["semseg"] == PERSON
        if person.any():
            assert ((a["parts"] > 0) == person).all() and a["parts"].max() <= 6
        else:
            assert (a["parts"] == 255).all()


def test_depth_and_normals_describe_the_same_planes():
    """Back-projected floor/wall pixels lie on one plane whose normal is the labelled normal."""
    rng = np.random.default_rng(7)
    scene = sample_scene(rng, 64, 64)
    a = render(scene, 64, 64, rng)
    f = scene.focal
    jj, ii = np.meshgrid(np.arange(64) + 0.5 - 32, -(np.arange(64) + 0.5 - 32))
    X = np.stack([jj / f * a["depth"], ii / f * a["depth"], -a["depth"]])  # camera frame points
    sky = a["semseg"] == 0
    assert ((a["normals"] * X).sum(0)[~sky] < 0).all()  # every visible normal faces the camera
    for inst_id in range(1, N_ROOM):
        m = a["instances"] == inst_id
        if m.sum() < 20:
            continue
        n = a["normals"][:, m]
        assert np.allclose(n, n[:, :1], atol=1e-4)  # one normal per plane
        offsets = (n[:, :1] * X[:, m]).sum(0)
        assert offsets.std() < 1e-3 * max(1.0, abs(offsets.mean()))


def test_scene_content_statistics(scenes):
    seen = set()
    persons = 0
    for a in scenes:
        objs = np.unique(a["instances"][a["instances"] >= N_ROOM])
        assert len(objs) <= 8
        seen |= set(np.unique(a["semseg"]).tolist())
        persons += (a["semseg"] == PERSON).any()
    assert {1, 2} <= seen and len(seen & set(range(3, 10))) >= 5
    assert 0 < persons < len(scenes)  # both images with and without persons
    assert scenes[0]["image"].dtype == np.uint8
    colours = [(a["image"].reshape(-1, 3) / 255).std(0).mean() for a in scenes]
    assert min(colours) > 0.02  # not blank


def test_colour_is_independent_of_class():
    """Mean object colour per class is statistically indistinguishable: shape must carry the class."""
    means = {c: [] for c in range(3, 10)}
    for i in range(25):
        a = scene_arrays(11, "train", i, (48, 48))
        for c in means:
            m = a["semseg"] == c
            if m.sum() > 5:
                means[c].append(a["image"][m].mean(0) / 255)
    per_class = np.array([np.mean(v, 0) for v in means.values() if len(v) >= 3])
    assert per_class.shape[0] >= 4 and np.ptp(per_class, axis=0).max() < 0.35


def test_caches_return_identical_samples(tmp_path):
    plain = build_dataset("synthetic", split="test", size=32, length=2)
    mem = build_dataset("synthetic", split="test", size=32, length=2, cache=True)
    disk = build_dataset("synthetic", split="test", size=32, length=2, cache=str(tmp_path))
    for ds in (mem, disk, disk):  # the second disk pass reads the files back
        s, r = ds[1], plain[1]
        for k in ("image", "edge", "semseg", "parts", "normals", "sal", "depth"):
            assert torch.equal(s[k], r[k]), k
    assert len(list(tmp_path.rglob("*.npz"))) == 1


def test_label_drop_and_collate():
    ds = build_dataset("synthetic", split="val", size=32, length=10, label_drop={"semseg": 0.3, "depth": 0.5}, label_drop_seed=1)
    dropped = ds.dropped()
    assert len(dropped["semseg"]) == 3 and len(dropped["depth"]) == 5 and not dropped["edge"]
    again = build_dataset("synthetic", split="val", size=32, length=10, label_drop={"semseg": 0.3, "depth": 0.5}, label_drop_seed=1)
    assert again.dropped() == dropped
    i = next(iter(dropped["semseg"]))
    s = ds[i]
    assert (s["semseg"] == 255).all() and "semseg" in s["meta"]["dropped"]
    j = next(k for k in range(10) if k not in dropped["depth"])
    assert (ds[j]["depth"] > 0).any()
    all_drop = build_dataset("synthetic", split="val", size=32, length=2, label_drop=1.0)[0]
    assert (all_drop["edge"] == 255).all() and (all_drop["normals"] == 0).all() and (all_drop["sal"] == 255).all()
    batch = collate([ds[0], ds[1], ds[2]])
    assert batch["image"].shape == (3, 3, 32, 32) and batch["semseg"].shape == (3, 32, 32)
    assert isinstance(batch["meta"], list) and len(batch["meta"]) == 3
    loader = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=collate)
    assert next(iter(loader))["normals"].shape == (4, 3, 32, 32)


def test_augmented_training_samples_keep_size_and_formats():
    torch.manual_seed(0)
    ds = build_dataset("synthetic", split="train", size=40, length=4, augment=True)
    for i in range(4):
        s = ds[i]
        assert s["image"].shape == (3, 40, 40)
        assert set(s["edge"].unique().tolist()) <= {0.0, 1.0, 255.0}
        n = s["normals"].norm(dim=0)
        assert torch.all(((n - 1).abs() < 1e-4) | (n == 0))


def test_generate_any_size():
    a = generate((1, 2, 3), 24, 40)
    assert a["image"].shape == (24, 40, 3) and a["semseg"].shape == (24, 40)


def test_subject_framing_brings_people_and_objects_close():
    """``subject`` (default) puts a foreground subject in most scenes; ``room`` keeps them far."""
    def stats(framing):
        person, nearest = [], []
        for i in range(30):
            a = scene_arrays(5, "val", i, (48, 48), framing)
            person.append((a["semseg"] == PERSON).mean())
            obj = a["instances"] >= N_ROOM
            nearest.append(a["depth"][obj].min() if obj.any() else np.inf)
        return np.array(person), np.array(nearest)

    p_sub, n_sub = stats("subject")
    p_room, n_room = stats("room")
    assert np.mean(p_sub > 0) >= 0.6 and np.median(p_sub) > 2 * np.median(p_room)
    assert np.median(n_sub) < np.median(n_room)
    assert np.array_equal(scene_arrays(5, "val", 3, (48, 48))["semseg"], scene_arrays(5, "val", 3, (48, 48), "subject")["semseg"])


def test_framing_option_is_checked_and_keys_the_cache(tmp_path):
    from tsn.errors import ConfigError

    with pytest.raises(ConfigError, match=r"framing must be one of subject, room, got 'closeup'") as e:
        build_dataset("synthetic", split="val", size=32, length=2, framing="closeup")
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="framing must be one of"):
        generate((1, 2), 16, 16, framing="portrait")
    for framing in ("subject", "room"):
        build_dataset("synthetic", split="val", size=32, length=1, framing=framing, cache=str(tmp_path))[0]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["synthetic-val-seed0-32x32", "synthetic-val-seed0-32x32-subject"]  # old caches are "room"
