"""The authors' released checkpoints: state dicts built here in the release's
exact key layout and shapes (RELEASE_CHECKPOINTS.md; no release code), a
release-layout forward written out by hand, and the converter's invariants,
round trips and one-line errors."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.models import resnet18

from tsn.errors import ConfigError
from tsn.release import (RELEASE_TASK_ORDER, ReleaseError, convert_state, import_release, release_config,
                         to_release_state)

CHANNELS = {"semseg": 21, "parts": 7, "edge": 1, "normals": 3, "sal": 1}
BLOCK_SHAPES = {  # prefix: (out, in, k), RELEASE_CHECKPOINTS.md's table
    "layer0_1x1": (64, 64, 1), "layer1_1x1": (64, 64, 1), "layer2_1x1": (128, 128, 1), "layer3_1x1": (256, 256, 1),
    "layer4_1x1": (512, 512, 1), "conv_up3": (512, 768, 3), "conv_up2": (256, 640, 3), "conv_up1": (256, 320, 3),
    "conv_up0": (128, 320, 3), "conv_original_size2": (64, 128, 3),
}


@pytest.fixture(scope="module", autouse=True)
def _threads():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def release_encoder(g: torch.Generator) -> dict[str, torch.Tensor]:
    """torchvision ResNet-18 weights under the release's child names, with
    non-trivial BN statistics."""
    out = {}
    for k, v in resnet18(weights=None).state_dict().items():
        if k.startswith("fc."):
            continue
        if k.endswith("running_mean"):
            v = 0.1 * torch.randn(v.shape, generator=g)
        elif k.endswith("running_var"):
            v = 0.5 + torch.rand(v.shape, generator=g)
        elif k.endswith("bn1.weight") or k.endswith("bn2.weight") or k.endswith("downsample.1.weight") or k == "bn1.weight":
            v = 0.5 + torch.rand(v.shape, generator=g)
        elif k.endswith(".bias"):
            v = 0.1 * torch.randn(v.shape, generator=g)
        for src, dst in (("conv1.", "layer0.0."), ("bn1.", "layer0.1."), ("layer1.", "layer1.1.")):
            if k.startswith(src):
                k = dst + k[len(src):]
                break
        out[k] = v.clone()
    return out


def release_state(kind: str, task: str | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sd = release_encoder(g)
    for p, (co, ci, k) in BLOCK_SHAPES.items():
        sd[f"{p}.conv1.weight"] = torch.randn(co, ci, k, k, generator=g) * math.sqrt(2.0 / (ci * k * k))
        sd[f"{p}.conv1.bias"] = torch.randn(co, generator=g)  # large: it must not matter
        if kind == "tsn":
            sd[f"{p}.style1.transform.linear.weight_orig"] = torch.randn(2 * co, 100, generator=g)
            sd[f"{p}.style1.transform.linear.bias"] = torch.cat([1 + 0.1 * torch.randn(co, generator=g),
                                                                 0.1 * torch.randn(co, generator=g)])
        else:
            sd[f"{p}.bn1.weight"] = 1 + 0.1 * torch.randn(co, generator=g)
            sd[f"{p}.bn1.bias"] = 0.1 * torch.randn(co, generator=g)
    if kind == "tsn":
        for i in range(1, 16, 2):
            sd[f"fcs.mapping.{i}.linear.weight_orig"] = torch.randn(100, 100, generator=g)
            sd[f"fcs.mapping.{i}.linear.bias"] = 0.1 * torch.randn(100, generator=g)
    c = 21 if kind == "tsn" else CHANNELS[task]
    sd["conv_last.0.weight"] = torch.randn(c, 64, 1, 1, generator=g) * 0.1
    sd["conv_last.0.bias"] = torch.randn(c, generator=g) * 0.1
    return sd


def release_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, kind: str, task_index: int | None = None,
                    channels: int | None = None, use_conv_bias: bool = True) -> torch.Tensor:
    """The release's forward written from RELEASE_CHECKPOINTS.md (eval mode)."""

    def bn(t, p):
        return F.batch_norm(t, sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"], sd[p + ".bias"],
                            False, 0.0, 1e-5)

    def basic(t, p, stride):
        out = F.relu(bn(F.conv2d(t, sd[p + ".conv1.weight"], stride=stride, padding=1), p + ".bn1"))
        out = bn(F.conv2d(out, sd[p + ".conv2.weight"], padding=1), p + ".bn2")
        idn = t
        if p + ".downsample.0.weight" in sd:
            idn = bn(F.conv2d(t, sd[p + ".downsample.0.weight"], stride=stride), p + ".downsample.1")
        return F.relu(out + idn)

    l0 = F.relu(bn(F.conv2d(x, sd["layer0.0.weight"], stride=2, padding=3), "layer0.1"))
    l1 = basic(basic(F.max_pool2d(l0, 3, 2, 1), "layer1.1.0", 1), "layer1.1.1", 1)
    l2 = basic(basic(l1, "layer2.0", 2), "layer2.1", 1)
    l3 = basic(basic(l2, "layer3.0", 2), "layer3.1", 1)
    l4 = basic(basic(l3, "layer4.0", 2), "layer4.1", 1)
    latent = None
    if kind == "tsn":
        code = torch.zeros(1, 100)
        code[0, 20 * task_index: 20 * (task_index + 1)] = 1.0  # test.py's blocks of 20 ones
        z = code * torch.rsqrt(code.pow(2).mean(dim=1, keepdim=True) + 1e-8)  # PixelNorm
        for i in range(1, 16, 2):
            z = F.leaky_relu(F.linear(z, sd[f"fcs.mapping.{i}.linear.weight_orig"] * math.sqrt(2 / 100),
                                      sd[f"fcs.mapping.{i}.linear.bias"]), 0.2)
        latent = z

    def block(t, p):
        k = sd[p + ".conv1.weight"].shape[-1]
        y = F.conv2d(t, sd[p + ".conv1.weight"], sd[p + ".conv1.bias"] if use_conv_bias else None, padding=k // 2)
        if kind == "tsn":
            y = F.instance_norm(y)
            s = F.linear(latent, sd[p + ".style1.transform.linear.weight_orig"] * math.sqrt(2 / 100),
                         sd[p + ".style1.transform.linear.bias"])
            gamma, beta = s.chunk(2, dim=1)
            return F.leaky_relu(gamma[:, :, None, None] * y + beta[:, :, None, None], 0.01)
        y = F.instance_norm(y, weight=sd[p + ".bn1.weight"], bias=sd[p + ".bn1.bias"])
        return F.relu(y)

    def up(t):
        return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=True)

    y = block(l4, "layer4_1x1")
    y = block(torch.cat([up(y), block(l3, "layer3_1x1")], 1), "conv_up3")
    y = block(torch.cat([up(y), block(l2, "layer2_1x1")], 1), "conv_up2")
    y = block(torch.cat([up(y), block(l1, "layer1_1x1")], 1), "conv_up1")
    y = block(torch.cat([up(y), block(l0, "layer0_1x1")], 1), "conv_up0")
    y = block(up(y), "conv_original_size2")
    out = F.conv2d(y, sd["conv_last.0.weight"], sd["conv_last.0.bias"])
    if kind == "tsn":  # the release's channel averaging
        h, w = out.shape[-2:]
        out = F.adaptive_avg_pool3d(out.unsqueeze(1), (channels, h, w)).squeeze(1)
    return out


def _save(path, state, **extra):
    torch.save({"model_state": state, "epoch": 130, **extra}, path)
    return path


def _load(run):
    from eval.run import load_run

    cfg, model, _ = load_run(run, device="cpu")
    return cfg, model


# ---------------------------------------------------------------- equivalence


def test_conv_bias_before_instance_norm_has_no_effect():
    sd = release_state("tsn")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a = release_forward(sd, x, "tsn", 0, 21, use_conv_bias=True)
        b = release_forward(sd, x, "tsn", 0, 21, use_conv_bias=False)
    assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)
    sd = release_state("single_task", "parts")
    with torch.no_grad():
        a = release_forward(sd, x, "single_task", use_conv_bias=True)
        b = release_forward(sd, x, "single_task", use_conv_bias=False)
    assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_converted_tsn_computes_the_release_forward(tmp_path):
    sd = release_state("tsn", seed=1)
    note = import_release(_save(tmp_path / "tsns_model.pth", sd), "tsn", tmp_path / "run")
    assert note["dropped"] == sorted(f"{p}.conv1.bias" for p in BLOCK_SHAPES)
    cfg, model = _load(tmp_path / "run")
    assert list(cfg.data.tasks) == list(RELEASE_TASK_ORDER) and cfg.eval.geometry == "release"
    assert cfg.model.name == "tsn" and cfg.model.pretrained is False and cfg.data.name == "pascal"
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours = model(x)
        for i, t in enumerate(RELEASE_TASK_ORDER):
            ref = release_forward(sd, x, "tsn", i, CHANNELS[t])
            assert ours[t].shape == ref.shape
            assert torch.allclose(ours[t], ref, atol=2e-4, rtol=1e-4), (t, (ours[t] - ref).abs().max())


@pytest.mark.parametrize("task,alias", [("parts", "parts"), ("edge", "edges")])
def test_converted_single_task_computes_the_release_forward(tmp_path, task, alias):
    sd = release_state("single_task", task, seed=2)
    import_release(_save(tmp_path / "st.pth", sd), "single_task", tmp_path / "run", task=alias)
    cfg, model = _load(tmp_path / "run")
    assert list(cfg.data.tasks) == [task] and cfg.model.name == "single_task"
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ours, ref = model(x, task=task), release_forward(sd, x, "single_task")
    assert ours.shape == (1, CHANNELS[task], 64, 64)
    assert torch.allclose(ours, ref, atol=2e-4, rtol=1e-4)


# ---------------------------------------------------------------- invariants and round trips


def test_conversion_invariants_and_round_trip(tmp_path):
    sd = release_state("tsn", seed=3)
    converted, dropped = convert_state(sd, "tsn")
    assert len(converted) + len(dropped) == len(sd)  # every key used or dropped, none invented
    assert all(k.endswith(".conv1.bias") for k in dropped)
    import_release(_save(tmp_path / "a.pth", sd), "tsn", tmp_path / "run")
    _, model = _load(tmp_path / "run")
    state = model.state_dict()
    back = to_release_state(state, "tsn")
    assert set(back) == set(sd)
    for k, v in sd.items():
        want = torch.zeros_like(v) if k in dropped else v
        assert torch.equal(back[k], want), k
    # the release's codes: 20-ones blocks in test.py's order
    for i, t in enumerate(RELEASE_TASK_ORDER):
        code = torch.zeros(100)
        code[20 * i: 20 * (i + 1)] = 1
        assert torch.equal(model.codes.code(t), code)
    # release layout -> run -> release layout -> run: the same weights
    import_release(_save(tmp_path / "b.pth", back), "tsn", tmp_path / "run2")
    _, again = _load(tmp_path / "run2")
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in state.items())


def test_dataparallel_prefix_and_base_model_duplicates_are_accepted(tmp_path):
    sd = release_state("single_task", "sal", seed=4)
    dup = {("base_model." + k.replace("layer0.0.", "conv1.").replace("layer0.1.", "bn1.").replace("layer1.1.", "layer1.")): v
           for k, v in sd.items() if k.startswith(("layer0.", "layer1.", "layer2.", "layer3.", "layer4."))}
    dup["base_model.fc.weight"] = torch.zeros(1000, 512)
    wrapped = {"module." + k: v for k, v in {**sd, **dup}.items()}
    note = import_release(_save(tmp_path / "m.pth", wrapped), "single_task", tmp_path / "run", task="saliency")
    assert "base_model.fc.weight" in note["dropped"]
    json.loads((tmp_path / "run" / "release_import.json").read_text())
    bad = dict(dup)
    bad["base_model.layer4.1.conv2.weight"] = bad["base_model.layer4.1.conv2.weight"] + 1
    with pytest.raises(ReleaseError, match="base_model.layer4.1.conv2.weight"):
        import_release(_save(tmp_path / "n.pth", {**sd, **bad}), "single_task", tmp_path / "run2", task="sal")


def test_imported_run_is_evaluated_by_python_m_eval(tmp_path, capsys, monkeypatch):
    """eval reads the imported run with the release's geometry (a tiny fake
    PASCAL-Context layout stands in for the data)."""
    from eval.__main__ import main

    sd = release_state("single_task", "semseg", seed=5)
    root = _fake_pascal(tmp_path / "PASCAL_MT")
    assert main(["import-release", str(_save(tmp_path / "s.pth", sd)), "--kind", "single_task", "--task", "seg",
                 "--out", str(tmp_path / "run"), "--set", f"data.root={root}", "--set", "data.size=64"]) == 0
    capsys.readouterr()
    assert main([str(tmp_path / "run"), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["geometry"] == "release" and 0 <= res["results"]["semseg"]["mIoU"] <= 100
    assert main([str(tmp_path / "run")]) == 0
    assert "imported from s.pth" in capsys.readouterr().out.splitlines()[0]
    # exports at the original 40x50 size, in both geometries
    from PIL import Image

    for geometry in ("release", "pad"):
        exp = tmp_path / f"exp_{geometry}"
        assert main([str(tmp_path / "run"), "--geometry", geometry, "--export", str(exp)]) == 0
        files = sorted((exp / "semseg").iterdir())
        assert [f.name for f in files] == ["2008_000001.png", "2008_000002.png"]
        assert all(Image.open(f).size == (50, 40) for f in files)
    assert len(list((tmp_path / "run" / "evals").iterdir())) == 2  # release and pad records


def _fake_pascal(root):
    """Two 40x50 images in PASCAL_MT's layout (semseg only)."""
    import numpy as np
    from PIL import Image

    (root / "JPEGImages").mkdir(parents=True)
    (root / "ImageSets" / "Context").mkdir(parents=True)
    (root / "semseg" / "VOC12").mkdir(parents=True)
    rng = np.random.default_rng(0)
    ids = ["2008_000001", "2008_000002"]
    for i in ids:
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(root / "JPEGImages" / f"{i}.jpg")
        seg = np.zeros((40, 50), np.uint8)
        seg[:, 25:] = 15
        Image.fromarray(seg).save(root / "semseg" / "VOC12" / f"{i}.png")
    (root / "ImageSets" / "Context" / "val.txt").write_text("\n".join(ids) + "\n")
    (root / "ImageSets" / "Context" / "train.txt").write_text("\n".join(ids) + "\n")
    return root


# ---------------------------------------------------------------- errors


def test_what_does_not_fit_is_one_line_naming_the_key(tmp_path):
    from eval.__main__ import main

    sd = release_state("tsn", seed=6)
    ck = _save(tmp_path / "t.pth", sd)
    cases = []
    extra = dict(sd)
    extra["conv_up5.conv1.weight"] = torch.zeros(1)
    cases.append((extra, "tsn", None, "conv_up5.conv1.weight"))
    missing = dict(sd)
    del missing["conv_up2.style1.transform.linear.bias"]
    cases.append((missing, "tsn", None, "conv_up2.style1.transform.linear.bias is missing"))
    shape = dict(sd)
    shape["conv_up3.conv1.weight"] = torch.zeros(512, 767, 3, 3)
    cases.append((shape, "tsn", None, r"conv_up3.conv1.weight has shape \[512, 767, 3, 3\]"))
    cases.append((sd, "single_task", "semseg", r"style1.transform.linear.weight_orig is not part .* use --kind tsn"))
    for i, (state, kind, task, msg) in enumerate(cases):
        with pytest.raises(ReleaseError, match=msg):
            import_release(_save(tmp_path / f"c{i}.pth", state), kind, tmp_path / f"r{i}", task=task)
        assert not (tmp_path / f"r{i}").exists()  # nothing half-written
    torch.save({"state_dict": sd}, tmp_path / "other.pth")
    with pytest.raises(ReleaseError, match="no 'model_state' entry"):
        import_release(tmp_path / "other.pth", "tsn", tmp_path / "x")
    with pytest.raises(ConfigError, match="needs --task"):
        import_release(ck, "single_task", tmp_path / "x")
    with pytest.raises(ConfigError, match="unknown release task 'depth'"):
        import_release(ck, "single_task", tmp_path / "x", task="depth")
    import_release(ck, "tsn", tmp_path / "ok")
    with pytest.raises(ConfigError, match="already holds a run"):
        import_release(ck, "tsn", tmp_path / "ok")
    # through the CLI: exit 2, one line
    (tmp_path / "junk.pth").write_bytes(b"junk")
    import subprocess
    import sys
    from pathlib import Path

    r = subprocess.run([sys.executable, "-m", "eval", "import-release", str(tmp_path / "junk.pth"), "--kind", "tsn",
                        "--out", str(tmp_path / "j")], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 2 and r.stderr.startswith("error: cannot read") and r.stderr.count("\n") == 1, r.stderr


def test_release_config_is_the_papers_model():
    from tsn.models import build_model
    from tsn.models.params import parameter_report
    from tsn.models.registry import task_channels_for

    cfg = release_config("tsn")
    model = build_model(cfg.model, task_channels_for(list(cfg.data.tasks), cfg.data.name))
    assert parameter_report(model)["params"] / 1e6 == pytest.approx(18.26, abs=0.01)  # TSN_ARCHITECTURE.md


def test_exported_edge_pngs_score_as_the_in_pipeline_evaluation(tmp_path, capsys):
    """The release geometry's edge PNGs, read back as k/255 and scored by the
    boundary benchmark's functions directly, give the in-pipeline odsF / oisF
    / AP of the fast protocol."""
    import numpy as np
    from PIL import Image
    from scipy import io as sio

    from eval.__main__ import main
    from tsn.config import load_config
    from tsn.data import build_dataset
    from tsn.engine.geometry import ReleaseResize
    from tsn.metrics.edge_protocols import get_protocol

    FAST = get_protocol("fast")
    root = _fake_pascal(tmp_path / "PASCAL_MT")
    (root / "pascal-context" / "trainval").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in ("2008_000001", "2008_000002"):
        lm = np.ones((40, 50), np.int32)
        lm[rng.integers(5, 35):, :] = 2
        lm[:, rng.integers(5, 45):] = 3
        sio.savemat(root / "pascal-context" / "trainval" / f"{i}.mat", {"LabelMap": lm})
    sd = release_state("single_task", "edge", seed=7)
    sd["conv_last.0.bias"] = torch.tensor([-2.0])  # a sparse-ish map
    assert main(["import-release", str(_save(tmp_path / "e.pth", sd)), "--kind", "single_task", "--task", "edge",
                 "--out", str(tmp_path / "run"), "--set", f"data.root={root}", "--set", "data.size=64"]) == 0
    capsys.readouterr()
    # the fast protocol here (the benchmark functions below); seism: the next test
    assert main([str(tmp_path / "run"), "--set", "eval.options.edge.protocol=fast", "--export", str(tmp_path / "exp"),
                 "--json"]) == 0
    inline = json.loads(capsys.readouterr().out)["results"]["edge"]
    cfg = load_config(tmp_path / "run" / "config.yaml")
    ds = build_dataset("pascal", root=str(root), split="val", tasks=["edge"], size=64, transform=ReleaseResize((64, 64)))
    th = FAST.thresholds(99)
    per_image = []
    for j in range(len(ds)):
        s = ds[j]
        gt = s["meta"]["original"]["edge"][0].numpy()
        k = np.asarray(Image.open(tmp_path / "exp" / "edge" / f"{s['meta']['id']}.png"))
        assert k.shape == gt.shape == (40, 50)
        per_image.append(FAST.image_counts(k.astype(np.float64) / 255.0, gt == 1, th, max_dist=0.0075))
    counts = np.sum(per_image, axis=0)
    ois = np.sum([FAST.ois(c) for c in per_image], axis=0)
    ref = FAST.summarize(th, counts, ois)
    assert cfg.eval.geometry == "release" and 0 < inline["odsF"] < 100 and counts[:, 3].min() < counts[:, 3].max()
    for key in ("odsF", "oisF", "AP"):
        assert inline[key] == pytest.approx(100.0 * ref[key], abs=1e-9), key


def test_eval_edges_on_exported_pngs_gives_the_in_pipeline_seism_numbers(tmp_path, capsys):
    """The issue's check, through the command lines: export the release
    geometry's edge PNGs, score them with ``python -m eval edges --protocol
    seism`` against the context .mat files, and get the in-pipeline odsF /
    oisF / AP of the same protocol when the pipeline scores SEISM's ground truth
    (``data.options.edge_label=seism``: thin(seg2bmap(LabelMap)))."""
    import numpy as np
    from scipy import io as sio

    from eval.__main__ import main

    root = _fake_pascal(tmp_path / "PASCAL_MT")
    gt = root / "pascal-context" / "trainval"
    gt.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in ("2008_000001", "2008_000002"):
        lm = np.ones((40, 50), np.int32)
        lm[rng.integers(5, 35):, :] = 2
        lm[:, rng.integers(5, 45):] = 3
        sio.savemat(gt / f"{i}.mat", {"LabelMap": lm})
    sd = release_state("single_task", "edge", seed=7)
    sd["conv_last.0.bias"] = torch.tensor([-2.0])
    assert main(["import-release", str(_save(tmp_path / "e.pth", sd)), "--kind", "single_task", "--task", "edge",
                 "--out", str(tmp_path / "run"), "--set", f"data.root={root}", "--set", "data.size=64"]) == 0
    capsys.readouterr()
    assert main([str(tmp_path / "run"), "--set", "eval.options.edge.protocol=seism", "--set",
                 "data.options.edge_label=seism", "--export", str(tmp_path / "exp"), "--json"]) == 0
    inline = json.loads(capsys.readouterr().out)["results"]["edge"]
    assert main(["edges", str(tmp_path / "exp" / "edge"), "--gt", str(gt), "--protocol", "seism",
                 "--max-dist", "0.0075", "--partial", "--json"]) == 0
    folder = json.loads(capsys.readouterr().out)
    assert folder["images"] == 1 or folder["images"] == 2
    for key in ("odsF", "oisF", "AP"):
        assert folder[key] == pytest.approx(inline[key], abs=1e-6), key


# ---------------------------------------------------------------- continuing from the release's weights


def test_train_resume_fine_tunes_an_imported_run_and_keeps_the_release_weights(tmp_path, capsys):
    """The release ships no optimizer state: ``train --resume`` starts the
    optimizer fresh from the imported weights, and best.pt (replaced by
    training) is first kept as release.pt, byte for byte."""
    from eval.__main__ import main as eval_main
    from train.__main__ import main as train_main
    from tsn.engine.checkpoint import load_checkpoint

    root = _fake_pascal(tmp_path / "PASCAL_MT")
    run = tmp_path / "run"
    assert eval_main(["import-release", str(_save(tmp_path / "s.pth", release_state("single_task", "semseg", seed=3))),
                      "--kind", "single_task", "--task", "semseg", "--out", str(run),
                      "--set", f"data.root={root}", "--set", "data.size=64"]) == 0
    imported = (run / "checkpoints" / "best.pt").read_bytes()
    assert train_main(["--resume", "--out", str(run), "--set", "train.epochs=1", "--set", "train.batch_size=2",
                       "--set", "data.num_workers=0", "--quiet"]) == 0
    assert (run / "checkpoints" / "release.pt").read_bytes() == imported
    assert "fine-tuning the imported release weights" in (run / "log.txt").read_text()
    record = json.loads((run / "metrics.json").read_text())
    assert [h["epoch"] for h in record["history"]][-1] == 1 and record["steps"] >= 1
    # the weights moved from the release's (the optimizer stepped), and the release's stay in release.pt
    tuned, kept = load_checkpoint(run / "checkpoints" / "last.pt")["model"], load_checkpoint(run / "checkpoints" / "release.pt")["model"]
    assert any(not torch.equal(tuned[k], kept[k]) for k in kept if kept[k].is_floating_point())
    assert (run / "release_import.json").is_file()
    capsys.readouterr()


def test_add_task_accepts_an_imported_tsn_and_names_what_it_can_add(tmp_path):
    """The release's TSN holds all five PASCAL-Context tasks, so add_task
    reads the imported run and then says there is nothing on PASCAL to add."""
    from train.add_task import add_task

    run = tmp_path / "run"
    import_release(_save(tmp_path / "t.pth", release_state("tsn")), "tsn", run)
    with pytest.raises(ConfigError, match=r"already has 'semseg'"):
        add_task(run, "semseg", tmp_path / "new", device="cpu", log=lambda *a: None)
    with pytest.raises(ConfigError, match=r"dataset 'pascal' has no 'depth'; it has edge, semseg, parts, normals, sal"):
        add_task(run, "depth", tmp_path / "new", device="cpu", log=lambda *a: None)
    assert not (tmp_path / "new").exists()
