"""build_dataset / dataset_info / colouring / preview: names, errors, formats."""

import numpy as np
import pytest
import torch
from PIL import Image

from tsn.data import build_dataset, collate, dataset_info, list_datasets
from tsn.data.download import main as download_main
from tsn.data.preview import main as preview_main
from tsn.data.visualize import colorize
from tsn.errors import ConfigError


def test_registry_and_info():
    assert list_datasets() == ["bsds", "nyud", "nyud_release", "pascal", "synthetic"]
    syn = dataset_info("synthetic")
    assert syn.tasks == ("edge", "semseg", "parts", "normals", "sal", "depth")
    assert syn.num_classes == {"semseg": 10, "parts": 7} and len(syn.class_names["semseg"]) == 10
    assert syn.default_size == (128, 128) and syn.splits == ("train", "val", "test")
    assert 0 < syn.edge_max_dist < 0.02 and "sal" in syn.notes


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "cityscapes"}, "unknown dataset 'cityscapes'; valid: bsds, nyud, nyud_release, pascal, synthetic"),
        ({"name": "synthetic", "tasks": ["edges"]}, "unknown task 'edges'"),
        ({"name": "synthetic", "tasks": []}, "empty"),
        ({"name": "synthetic", "split": "dev"}, "no split 'dev'; valid: train, val, test"),
        ({"name": "synthetic", "colour": 1}, "unknown option.*colour"),
        ({"name": "synthetic", "size": "big"}, "size must be"),
        ({"name": "synthetic", "eval_resize": "crop"}, "eval_resize"),
        ({"name": "synthetic", "label_drop": {"depth": 0.5}, "tasks": ["edge"]}, "not loaded: depth"),
        ({"name": "synthetic", "label_drop": 1.5}, r"\[0, 1\]"),
    ],
)
def test_bad_input_is_a_one_line_config_error(kwargs, match):
    name = kwargs.pop("name")
    with pytest.raises(ConfigError, match=match) as e:
        if name == "synthetic":
            kwargs = {"length": 2, "size": 16, **kwargs}
        ds = build_dataset(name, **kwargs)
        ds.dropped()
    assert "\n" not in str(e.value)


def test_collate_rejects_mixed_sizes():
    a = build_dataset("synthetic", split="val", size=16, length=1)[0]
    b = build_dataset("synthetic", split="val", size=24, length=1)[0]
    with pytest.raises(ConfigError, match="different shapes"):
        collate([a, b])


def test_colorize_labels_and_predictions():
    s = build_dataset("synthetic", split="val", size=24, length=1)[0]
    for task in ("image", "edge", "semseg", "parts", "normals", "sal", "depth"):
        rgb = colorize(task, s[task])
        assert rgb.shape == (24, 24, 3) and rgb.dtype == np.uint8, task
    logits = torch.zeros(10, 24, 24)
    logits[3] = 1
    assert (colorize("semseg", logits) == colorize("semseg", torch.full((24, 24), 3))).all()
    ign = colorize("semseg", torch.full((4, 4), 255))
    assert tuple(ign[0, 0]) == (224, 224, 192)
    assert (colorize("normals", torch.zeros(3, 4, 4)) == 0).all()
    assert tuple(colorize("edge", torch.tensor([[[0.0, 1.0]]]))[0, 1]) == (255, 255, 255)


def test_preview_and_download_cli(tmp_path, capsys):
    out = tmp_path / "p.png"
    assert preview_main(["synthetic", "--out", str(out), "--n", "2", "--size", "32"]) == 0
    im = Image.open(out)
    assert im.width == 7 * 34 and im.height == 14 + 2 * 34
    assert preview_main(["pascal", "--root", str(tmp_path)]) == 2
    assert "JPEGImages" in capsys.readouterr().err
    assert download_main(["nyud", "--root", str(tmp_path), "--dry-run"]) == 0
    assert "NYUD_MT.tgz" in capsys.readouterr().out
