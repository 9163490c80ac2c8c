"""tsn.predict and python -m eval predict: geometry, output formats, the README example, bad input."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import tsn
from eval.__main__ import main as eval_main
from tsn.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from tsn.errors import ConfigError, DataError
from tsn.inference import MIN_SIZE, render_panel

ROOT = Path(__file__).resolve().parents[1]


def _img(h, w, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _normalised(img: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(img).permute(2, 0, 1).float() / 255
    return ((x - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1))[None]


# ---------------------------------------------------------------- tsn.predict


def test_outputs_at_each_images_own_size_in_readable_units(model):
    preds = tsn.predict(model, [_img(40, 56), _img(70, 33, seed=1)], size="native")
    for p, (h, w) in zip(preds, [(40, 56), (70, 33)]):
        assert set(p) == {"edge", "semseg", "normals"}
        assert p["edge"].shape == (h, w) and p["edge"].min() >= 0 and p["edge"].max() <= 1
        assert p["semseg"].shape == (10, h, w)
        np.testing.assert_allclose(p["semseg"].sum(0), 1, atol=1e-5)  # probabilities
        assert p["normals"].shape == (3, h, w)
        np.testing.assert_allclose(np.linalg.norm(p["normals"], axis=0), 1, atol=1e-5)  # unit vectors
        assert all(a.dtype == np.float32 for a in p.values())


def test_native_prediction_is_the_models_output(model):
    img = _img(48, 64)
    p = tsn.predict(model, img, size="native")[0]
    with torch.no_grad():
        y = model(_normalised(img))
    np.testing.assert_allclose(p["edge"], torch.sigmoid(y["edge"][0, 0]).numpy(), atol=1e-6)
    np.testing.assert_allclose(p["semseg"], y["semseg"][0].softmax(0).numpy(), atol=1e-6)
    n = y["normals"][0]
    np.testing.assert_allclose(p["normals"], (n / n.norm(dim=0, keepdim=True)).numpy(), atol=1e-5)


def test_pad_geometry_shrinks_pads_crops_and_resizes_back(model):
    """A 64x96 image at size 48 (pad): shrunk to 32x48, padded to 48x48 with the
    normalised mean (zero), the prediction cropped to 32x48 and resized to 64x96."""
    img = _img(64, 96)
    p = tsn.predict(model, img, size=48, geometry="pad")[0]
    x = F.interpolate(_normalised(img), size=(32, 48), mode="bilinear", align_corners=False, antialias=True)
    x = F.pad(x, (0, 0, 0, 16))
    assert x.shape[-2:] == (48, 48)
    with torch.no_grad():
        y = model(x, task="semseg")[..., :32, :48]
    y = F.interpolate(y, size=(64, 96), mode="bilinear", align_corners=False)[0].softmax(0)
    np.testing.assert_allclose(p["semseg"], y.numpy(), atol=1e-6)
    # a smaller image is only padded: the same as predicting it at its own size
    small = _img(40, 36)
    a = tsn.predict(model, small, size=48, geometry="resize")[0]["edge"]
    b = tsn.predict(model, small, size=48, geometry="pad")[0]["edge"]
    assert a.shape == b.shape == (40, 36)


def test_size_default_is_the_runs_and_batching_does_not_change_results(model):
    assert model.input_size == (32, 32) and model.input_geometry == "pad"
    imgs = [_img(32, 32, s) for s in range(5)]
    one = tsn.predict(model, imgs, batch_size=1)
    many = tsn.predict(model, imgs, batch_size=4)
    for a, b in zip(one, many):
        for t in a:
            np.testing.assert_allclose(a[t], b[t], atol=1e-4)  # float rounding of other batch shapes


def test_tasks_subset_and_inputs_of_every_kind(model, tmp_path):
    img = _img(36, 40)
    Image.fromarray(img).save(tmp_path / "a.png")
    by_path, by_pil, by_float = tsn.predict(model, [tmp_path / "a.png", Image.fromarray(img), img / 255.0],
                                            tasks=["semseg"], size="native")
    assert set(by_path) == {"semseg"}
    np.testing.assert_array_equal(by_path["semseg"], by_pil["semseg"])
    np.testing.assert_allclose(by_path["semseg"], by_float["semseg"], atol=1e-6)


def test_a_tasks_own_code_reproduces_its_prediction(model):
    img = _img(32, 32)
    code = model.codes.code("semseg").detach().numpy()
    with_code = tsn.predict(model, img, tasks=["semseg"], code=code)[0]["semseg"]
    plain = tsn.predict(model, img, tasks=["semseg"])[0]["semseg"]
    np.testing.assert_allclose(with_code, plain, atol=1e-5)
    other = tsn.predict(model, img, tasks=["semseg"], code=model.codes.code("edge").detach().numpy())[0]["semseg"]
    assert np.abs(other - plain).max() > 1e-3  # the code, not the head, selects the task


def test_predict_errors(model, tmp_path):
    with pytest.raises(ConfigError, match="no task depth"):
        tsn.predict(model, _img(32, 32), tasks=["depth"])
    with pytest.raises(ConfigError, match=f"below the network's minimum of {MIN_SIZE}"):
        tsn.predict(model, _img(32, 32), size=16)
    with pytest.raises(DataError, match="below the network's minimum"):
        tsn.predict(model, _img(20, 40), size="native")
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(DataError, match="not a readable image"):
        tsn.predict(model, tmp_path / "bad.jpg")
    with pytest.raises(ConfigError, match="exactly one task"):
        tsn.predict(model, _img(32, 32), code=np.zeros(12))
    with pytest.raises(ConfigError, match="has 5 entries; this model's codes have 12"):
        tsn.predict(model, _img(32, 32), tasks=["edge"], code=np.zeros(5))


def test_panel_is_a_readable_png_with_one_column_per_task(model):
    img = _img(40, 60)
    pred = tsn.predict(model, img, size="native")[0]
    one = Image.open(io.BytesIO(render_panel(img, {"edge": pred["edge"]})))
    all_ = Image.open(io.BytesIO(render_panel(img, pred, {"semseg": [f"c{i}" for i in range(10)]}, title="x.png")))
    assert one.format == all_.format == "PNG"
    assert all_.size[0] > 1.8 * one.size[0]  # 4 columns against 2
    assert all_.size[1] > one.size[1]  # room for the class legend


# ---------------------------------------------------------------- README


def test_readme_example_runs(run_dir, monkeypatch, tmp_path):
    text = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- tested by tests/test_predict.py -->\s*```python\n(.*?)```", text, re.S)
    assert m, "the README's tsn.predict example is missing"
    code = m.group(1)
    assert "runs/synthetic_tsn" in code and "tsn.predict(" in code
    img = Image.fromarray(_img(90, 150))
    img.save(tmp_path / "photo.jpg")
    monkeypatch.chdir(tmp_path)
    exec(compile(code.replace("runs/synthetic_tsn", str(run_dir)), "README.md", "exec"), {})


# ---------------------------------------------------------------- the command


def _images(folder: Path) -> Path:
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(_img(32, 32)).save(folder / "a.png")
    Image.fromarray(_img(40, 60, 1)).save(folder / "sub" / "b.jpg")
    (folder / "sub" / "broken.png").write_bytes(b"\x89PNG broken")
    (folder / "notes.txt").write_text("not an image extension: not collected")
    return folder


def _cli(capsys, *argv) -> tuple[int, str, str]:
    rc = eval_main(["predict", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_writes_panels_and_arrays_and_skips_unreadable_images(run_dir, model, tmp_path, capsys):
    imgs = _images(tmp_path / "imgs")
    out = tmp_path / "out"
    rc, stdout, stderr = _cli(capsys, run_dir, imgs, "--out", out, "--device", "cpu", "--batch", "2")
    assert rc == 0, stderr
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "a.npz", "a.png", "sub/b.npz", "sub/b.png"]
    assert stderr.count("skipped") == 1 and "broken.png: not a readable image" in stderr
    assert "2 images" in stdout and "1 unreadable image skipped" in stdout
    with np.load(out / "sub" / "b.npz") as z:
        expect = tsn.predict(model, imgs / "sub" / "b.jpg")[0]
        assert set(z.files) == {"edge", "semseg", "normals", "image_size"}
        assert list(z["image_size"]) == [40, 60]
        for t, a in expect.items():
            np.testing.assert_allclose(z[t], a, atol=1e-4)  # batch of 2 here, of 1 there
    assert Image.open(out / "a.png").format == "PNG"


def test_cli_never_overwrites_without_the_flag(run_dir, tmp_path, capsys):
    img = tmp_path / "x.png"
    Image.fromarray(_img(32, 32)).save(img)
    out = tmp_path / "out"
    assert _cli(capsys, run_dir, img, "--out", out, "--format", "npz", "--tasks", "edge")[0] == 0
    (out / "x.npz").write_bytes(b"mine")
    rc, _, err = _cli(capsys, run_dir, img, "--out", out, "--format", "npz")
    assert rc == 2 and "x.npz exists; pass --overwrite" in err and err.count("\n") == 1
    assert (out / "x.npz").read_bytes() == b"mine"
    assert _cli(capsys, run_dir, img, "--out", out, "--format", "npz", "--overwrite")[0] == 0
    assert (out / "x.npz").read_bytes() != b"mine"


def test_cli_glob_native_size_and_code(run_dir, model, tmp_path, capsys):
    imgs = _images(tmp_path / "imgs")
    code = tmp_path / "code.txt"
    code.write_text(" ".join(str(v) for v in model.codes.code("semseg").tolist()))
    out = tmp_path / "out"
    rc, _, err = _cli(capsys, run_dir, str(imgs / "**" / "*.jpg"), "--out", out, "--size", "native",
                      "--tasks", "semseg", "--code", code, "--format", "npz")
    assert rc == 0, err
    with np.load(out / "b.npz") as z:
        assert set(z.files) == {"semseg", "image_size"} and z["semseg"].shape == (10, 40, 60)


@pytest.mark.parametrize("case", ["no_such_image", "all_unreadable", "no_checkpoint", "unknown_task", "small_size",
                                  "code_for_two_tasks", "same_name_twice"])
def test_cli_bad_input_is_one_line_and_writes_nothing(run_dir, tmp_path, capsys, case):
    good = tmp_path / "good.png"
    Image.fromarray(_img(32, 32)).save(good)
    (tmp_path / "bad.png").write_bytes(b"junk")
    (tmp_path / "empty_run").mkdir()
    (tmp_path / "other").mkdir()
    Image.fromarray(_img(32, 32)).save(tmp_path / "other" / "good.jpg")
    code = tmp_path / "c.npy"
    np.save(code, np.zeros(12, np.float32))
    out = tmp_path / "out"
    argv, expect = {
        "no_such_image": ([run_dir, tmp_path / "nope.png"], "nope.png: no such file or folder"),
        "all_unreadable": ([run_dir, tmp_path / "bad.png"], "none of the 1 images could be read; nothing written"),
        "no_checkpoint": ([tmp_path / "empty_run", good], "no checkpoint in"),
        "unknown_task": ([run_dir, good, "--tasks", "depth"], "the model has no task depth; it has edge, semseg, normals"),
        "small_size": ([run_dir, good, "--size", "16"], "below the network's minimum of 32 px"),
        "code_for_two_tasks": ([run_dir, good, "--code", code, "--tasks", "edge", "semseg"], "exactly one task"),
        "same_name_twice": ([run_dir, good, tmp_path / "other" / "good.jpg"], "would both write good.*"),
    }[case]
    rc, _, err = _cli(capsys, *argv, "--out", out)
    lines = [x for x in err.splitlines() if x.startswith("error: ")]
    assert rc == 2 and len(lines) == 1 and expect in lines[0], err
    assert not out.exists()
