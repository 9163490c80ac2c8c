"""The comparison architectures (cross-stitch, NDDR-CNN, MTAN, PAD-Net,
MTI-Net): shapes, gradients, parameter counts from hand formulas, the
deep-supervision loss, option errors, and one training step each."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tsn.config import ModelConfig, from_dict, load_config
from tsn.errors import ConfigError
from tsn.losses import MultiTaskLoss
from tsn.losses_aux import DeepSupervisionLoss
from tsn.models import build_model
from tsn.models.decoders import upsample
from tsn.models.encoders import build_encoder
from tsn.models.mtl_blocks import AUX_SEP
from tsn.models.registry import MODELS

ARCHS = ["cross_stitch", "nddr", "mtan", "padnet", "mtinet"]
AUX = {"padnet": ["initial"], "mtinet": ["scale0", "scale1", "scale2", "scale3"]}
TASKS = {"edge": 1, "semseg": 8, "normals": 3}
SMALL = dict(encoder_width=8, skip_widths=[8, 8, 16, 16, 32], up_widths=[32, 16, 16, 8, 8])
ROOT = Path(__file__).resolve().parents[1]


def small(name: str, **kw) -> ModelConfig:
    return from_dict(ModelConfig, {**SMALL, "name": name, **kw})


def count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name", ARCHS)
@pytest.mark.parametrize("size", [(33, 47), (31, 31)])
def test_output_shapes_at_odd_sizes(name, size):
    model = build_model(small(name), TASKS)
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        out = model.eval()(x)
        one = model(x, task="semseg")
        train_out = model.train()(x)
        train_one = model(x, task="semseg")
    assert set(out) == set(TASKS)  # eval: final predictions only
    for t, c in TASKS.items():
        assert out[t].shape == (2, c, *size)
        assert train_out[t].shape == (2, c, *size)
    assert one.shape == train_one.shape == (2, 8, *size)
    aux = {k for k in train_out if AUX_SEP in k}
    assert aux == {f"{t}{AUX_SEP}{tag}" for t in TASKS for tag in AUX.get(name, [])}
    for k in aux:
        assert train_out[k].shape[:2] == (2, TASKS[k.split(AUX_SEP)[0]])


@pytest.mark.parametrize("name", ARCHS)
def test_gradients_reach_every_parameter(name):
    model = build_model(small(name), TASKS).train()
    n = 64  # H/32 >= 2: the per-task decoders' instance norm is identically 0 on a 1x1 map
    x = torch.randn(2, 3, n, n)
    targets = {"edge": (torch.rand(2, 1, n, n) > 0.8).float(), "semseg": torch.randint(0, 8, (2, n, n)),
               "normals": torch.nn.functional.normalize(torch.randn(2, 3, n, n), dim=1)}
    losses = DeepSupervisionLoss(MultiTaskLoss(list(TASKS)))(model(x), targets)
    sum(losses.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing[:5]
    # every gradient is non-zero, except maybe a squeeze-excitation whose one hidden ReLU unit
    # (at these narrow widths) is off for both images
    zero = [n for n, p in model.named_parameters() if not p.grad.abs().sum() > 0 and ".se." not in n]
    assert not zero, zero[:5]


@pytest.mark.parametrize("name", ARCHS)
def test_subset_of_tasks_gives_the_same_predictions(name):
    model = build_model(small(name), TASKS).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        full, one = model(x), model(x, tasks=["normals"])
    torch.testing.assert_close(one["normals"], full["normals"])


# ---------------------------------------------------------------- parameter counts from formulas


def conv(cin: int, cout: int, k: int = 1, bias: bool = False) -> int:
    return cin * cout * k * k + (cout if bias else 0)


BN = 2  # affine parameters per channel


def basic(i: int, o: int) -> int:
    """torchvision BasicBlock (3x3-BN-3x3-BN) with a 1x1-BN projection when i != o."""
    return conv(i, o, 3) + BN * o + conv(o, o, 3) + BN * o + ((conv(i, o) + BN * o) if i != o else 0)


def bottle(i: int, o: int) -> int:
    """torchvision Bottleneck with o // 4 inner channels, projection when i != o."""
    p = o // 4
    return (conv(i, p) + BN * p + conv(p, p, 3) + BN * p + conv(p, o) + BN * o
            + ((conv(i, o) + BN * o) if i != o else 0))


def se(w: int) -> int:
    h = max(1, w // 16)
    return w * h + h + h * w + w


def encoder_count(cfg: ModelConfig) -> tuple[int, tuple[int, ...]]:
    enc = build_encoder(cfg.encoder, False, cfg.encoder_width)
    return count(enc), enc.channels


def test_cross_stitch_and_nddr_add_their_exchange_to_single_task():
    cfg = small("single_task")
    base = count(build_model(cfg, TASKS))
    _, ch = encoder_count(cfg)
    t = len(TASKS)
    assert count(build_model(small("cross_stitch"), TASKS)) == base + t * t * sum(ch)  # alpha_ij per channel
    assert count(build_model(small("nddr"), TASKS)) == base + t * sum(t * c * c + BN * c for c in ch)


def test_mtan_adds_attention_and_refinement_to_multi_decoder():
    base = count(build_model(small("multi_decoder"), TASKS))
    _, ch = encoder_count(small("mtan"))
    c = ch[1:]

    def att(i, o):
        m = o // 4
        return conv(i, m, bias=True) + BN * m + conv(m, o, bias=True) + BN * o

    attention = len(TASKS) * (att(c[0], c[0]) + sum(att(2 * c[k], c[k]) for k in (1, 2, 3)))
    refine = sum(bottle(c[k], c[k + 1]) for k in range(3))
    assert count(build_model(small("mtan"), TASKS)) == base + attention + refine


@pytest.mark.parametrize("head_width", [None, 10])
def test_padnet_count(head_width):
    cfg = small("padnet", head_width=head_width)
    enc, ch = encoder_count(cfg)
    d, t = 4 * SMALL["skip_widths"][1], len(TASKS)
    width = {k: head_width or c for k, c in TASKS.items()}  # a per-task mean head outputs head_width (default: its channels)
    expected = (enc + conv(sum(ch[1:]), d) + BN * d
                + t * 2 * bottle(d, d) + sum(conv(d, c, bias=True) for c in TASKS.values())  # initial
                + t * (t - 1) * 2 * conv(d, d, 3)  # distillation
                + t * 2 * bottle(d, d) + sum(conv(d, w, bias=True) for w in width.values()))  # final
    assert count(build_model(cfg, TASKS)) == expected


def test_mtinet_count():
    cfg = small("mtinet")
    enc, ch = encoder_count(cfg)
    c, t = ch[1:], len(TASKS)
    w = [max(1, v // 4) for v in SMALL["skip_widths"][1:]]
    initial = sum(t * (basic(c[s] + (w[s + 1] if s < 3 else 0), w[s]) + basic(w[s], w[s]))
                  + sum(conv(w[s], k, bias=True) for k in TASKS.values()) for s in range(4))

    def fpm(v):
        h = max(1, t * v // 4)
        return basic(t * v, h) + basic(h, h) + conv(h, t * v, bias=True) + basic(t * v, v) + t * se(v)

    distill = sum(t * (t - 1) * 2 * conv(v, v, 3) for v in w)
    s = sum(w)
    aggregate = t * (conv(s, s, bias=True) + BN * s) + sum(conv(s, k, bias=True) for k in TASKS.values())
    expected = enc + initial + sum(fpm(w[k]) for k in (1, 2, 3)) + distill + aggregate
    assert count(build_model(cfg, TASKS)) == expected


def test_new_methods_are_in_the_scaling_data_and_the_params_report(capsys):
    import json

    from eval.__main__ import main
    from eval.scaling import METHODS

    assert set(ARCHS) <= set(METHODS)
    for name in ARCHS:
        for ds in ("synthetic", "pascal", "nyud"):
            assert (ROOT / f"configs/{ds}/{name}.yaml").is_file()
    assert main(["params", str(ROOT / "configs/synthetic/padnet.yaml"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["model"] == "padnet" and rep["params"] > rep["by_part"]["encoder"] > 0 and rep["by_part"]["head"] > 0


# ---------------------------------------------------------------- exchange units at initialisation


def test_cross_stitch_unit_starts_as_alpha_self_plus_beta_others():
    from tsn.models.cross_stitch import CrossStitchUnit

    xs = [torch.randn(2, 4, 3, 3) for _ in range(3)]
    out = CrossStitchUnit(3, 4, 0.9, 0.1)(xs)
    torch.testing.assert_close(out[1], 0.9 * xs[1] + 0.1 * (xs[0] + xs[2]))


def test_nddr_layer_starts_as_alpha_self_plus_beta_others():
    from tsn.models.cross_stitch import NDDRLayer

    layer = NDDRLayer(3, 4, 0.9, 0.1).eval()  # fresh BN in eval: x / sqrt(1 + eps)
    xs = [torch.randn(2, 4, 3, 3) for _ in range(3)]
    want = torch.relu(0.9 * xs[2] + 0.1 * (xs[0] + xs[1])) / (1 + 1e-5) ** 0.5
    torch.testing.assert_close(layer(xs)[2], want)


def test_shared_parameters_are_what_several_tasks_train():
    for name, shared, private in [("cross_stitch", ("encoders.", "exchange."), ("decoders.",)),
                                  ("mtan", ("encoder.", "refine."), ("attention.", "decoders.")),
                                  ("padnet", ("encoder.", "fuse.", "initial."), ("initial_out.", "distill.", "final.")),
                                  ("mtinet", ("encoder.", "initial.", "fpm."), ("distill.", "aggregate."))]:
        model = build_model(small(name), TASKS)
        ids = {id(p) for p in model.shared_parameters()}
        for n, p in model.named_parameters():
            if n.startswith(private) or ".pred." in n:
                assert id(p) not in ids, (name, n)
            elif n.startswith(shared):
                assert id(p) in ids, (name, n)


# ---------------------------------------------------------------- deep supervision


def test_deep_supervision_adds_each_aux_loss_to_its_task():
    base = MultiTaskLoss(["semseg", "edge"])
    crit = DeepSupervisionLoss(base)
    final = {"semseg": torch.randn(2, 5, 16, 16), "edge": torch.randn(2, 1, 16, 16)}
    aux = {"semseg@a": torch.randn(2, 5, 4, 4), "semseg@b": torch.randn(2, 5, 8, 8), "edge@a": torch.randn(2, 1, 4, 4)}
    targets = {"semseg": torch.randint(0, 5, (2, 16, 16)), "edge": (torch.rand(2, 1, 16, 16) > 0.7).float()}
    plain = base(final, targets)
    assert crit(final, targets).keys() == plain.keys()
    torch.testing.assert_close(crit(final, targets)["semseg"], plain["semseg"])  # no aux: unchanged
    got = crit({**final, **aux}, targets)
    up = lambda k: upsample(aux[k], (16, 16))  # noqa: E731
    want_s = plain["semseg"] + base({"semseg": up("semseg@a")}, targets)["semseg"] + base({"semseg": up("semseg@b")}, targets)["semseg"]
    want_e = plain["edge"] + base({"edge": up("edge@a")}, targets)["edge"]
    assert set(got) == {"semseg", "edge"}
    torch.testing.assert_close(got["semseg"], want_s)
    torch.testing.assert_close(got["edge"], want_e)


def test_deep_supervision_without_a_label_is_a_connected_zero():
    crit = DeepSupervisionLoss(MultiTaskLoss(["sal"]))
    pred = {"sal": torch.randn(1, 1, 8, 8, requires_grad=True), "sal@initial": torch.randn(1, 1, 2, 2, requires_grad=True)}
    out = crit(pred, {})["sal"]
    out.backward()
    assert float(out.detach()) == 0.0 and pred["sal@initial"].grad is not None


# ---------------------------------------------------------------- options


def test_bad_options_are_one_line_errors():
    cfg = small("padnet")
    with pytest.raises(ConfigError, match="padnet width"):
        MODELS.get("padnet")(cfg, TASKS, width=6)
    with pytest.raises(ConfigError, match="mtinet widths"):
        MODELS.get("mtinet")(small("mtinet"), TASKS, widths=[4, 4])
    with pytest.raises(ConfigError, match="alpha"):
        MODELS.get("cross_stitch")(small("cross_stitch"), TASKS, alpha=float("nan"))
    assert count(MODELS.get("mtinet")(small("mtinet"), TASKS, widths=[4, 4, 8, 8])) > 0


def test_models_build_on_the_meta_device():
    with torch.device("meta"):
        for name in ARCHS:
            assert count(build_model(ModelConfig(name=name), {"edge": 1, "semseg": 21})) > 0


# ---------------------------------------------------------------- one training step through the trainer


@pytest.mark.parametrize("name", ARCHS)
def test_trains_one_step_through_the_trainer(tmp_path, name):
    from tsn.engine.trainer import Trainer

    data = {
        "data": {"name": "synthetic", "tasks": ["edge", "semseg", "normals"], "size": 64,
                 "options": {"length": {"train": 4, "val": 2, "test": 2}}},
        "model": {**SMALL, "name": name},
        "optim": {"lr": 1e-3, "schedule": "none"},
        "train": {"epochs": 1, "batch_size": 4, "images_every_val": 0, "sampling": "all"},
        "eval": {"batch_size": 2, "edge_thresholds": 3, "val_edge_thresholds": 3},
    }
    trainer = Trainer(load_config(data=data), tmp_path, quiet=True)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    res = trainer.fit()
    assert res["steps"] == 1 and set(res["val"]) == {"edge", "semseg", "normals"}
    still = [n for n, p in trainer.model.named_parameters() if torch.equal(p.detach(), before[n]) and ".se." not in n]
    assert not still, still[:5]  # every parameter took the step, aux heads included (".se.": see above)
    assert (tmp_path / "checkpoints" / "best.pt").is_file()


def _data(name: str, **train) -> dict:
    return {
        "data": {"name": "synthetic", "tasks": ["edge", "semseg"], "size": 64, "augment": False,
                 "options": {"length": {"train": 8, "val": 2, "test": 2}}},
        "model": {**SMALL, "name": name},
        "optim": {"lr": 1e-3, "schedule": "none"},
        "train": {"epochs": 2, "batch_size": 4, "images_every_val": 0, "sampling": "all", **train},
        "eval": {"batch_size": 2, "edge_thresholds": 3, "val_edge_thresholds": 3},
    }


def test_resumed_run_equals_uninterrupted_with_deep_supervision(tmp_path):
    from tsn.engine.trainer import Trainer

    Trainer(load_config(data=_data("mtinet")), tmp_path / "a", quiet=True).fit()
    Trainer(load_config(data=_data("mtinet", epochs=1)), tmp_path / "b", quiet=True).fit()
    Trainer(load_config(data=_data("mtinet")), tmp_path / "b", resume=True, quiet=True).fit()
    a, b = (torch.load(tmp_path / d / "checkpoints" / "last.pt", weights_only=False)["model"] for d in "ab")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_ddp_two_processes(tmp_path):
    """cross-stitch (no batch statistics outside the frozen encoders) equals one process;
    PAD-Net (aux outputs, BN in its branches) runs under DDP."""
    import json
    import os
    import subprocess
    import sys

    import yaml

    env = {**os.environ, "TSN_QUIET": "1", "OMP_NUM_THREADS": "1"}

    def run(cfg: dict, out: str, procs: int) -> dict:
        path = tmp_path / f"{out}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        pre = [sys.executable] + (["-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29547"]
                                  if procs == 2 else [])
        extra = ["--set", "train.batch_size=2"] if procs == 2 else []
        r = subprocess.run([*pre, "-m", "train", str(path), "--out", str(tmp_path / out), *extra], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        return json.loads((tmp_path / out / "metrics.json").read_text())

    cfg = _data("cross_stitch", epochs=1)
    cfg["model"]["encoder_norm"] = "frozen_bn"
    cfg["optim"] = {"name": "sgd", "lr": 0.05, "momentum": 0.9, "schedule": "none"}
    one, two = run(cfg, "one", 1), run(cfg, "two", 2)
    assert two["processes"] == 2 and one["steps"] == two["steps"] == 2
    a, b = (torch.load(tmp_path / d / "checkpoints" / "last.pt", weights_only=False)["model"] for d in ("one", "two"))
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=1e-4), k
    assert run(_data("padnet", epochs=1), "pad", 2)["processes"] == 2


@pytest.mark.parametrize("name", ARCHS)
def test_gradnorm_layer_is_shared_by_every_task(name):
    model = build_model(small(name), TASKS).train()
    out = model(torch.randn(2, 3, 64, 64))
    params = model.gradnorm_parameters()
    for t in TASKS:
        grads = torch.autograd.grad(out[t].pow(2).mean(), params, retain_graph=True, allow_unused=True)
        assert all(g is not None and g.abs().sum() > 0 for g in grads), (name, t)
