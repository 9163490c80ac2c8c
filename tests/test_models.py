"""Model shapes, conditioning, stacked decoding, codes and errors (no data, no weights)."""

import math

import pytest
import torch
import torch.nn.functional as F

from tsn.codes import Codebook, build_codebook, make_codes
from tsn.config import ModelConfig, from_dict
from tsn.errors import ConfigError
from tsn.models import build_model, list_models
from tsn.nn import AdaIN, Condition, EqualLinear, TaskEmbedding

TASKS = {"edge": 1, "semseg": 8, "parts": 7, "normals": 3, "sal": 1, "depth": 1}
SMALL = dict(encoder_width=8, skip_widths=[8, 8, 16, 16, 32], up_widths=[32, 16, 16, 8, 8],
             code={"kind": "orthogonal", "dim": 12}, embedding={"n_fc": 2})


def small(name: str, **kw) -> ModelConfig:
    return from_dict(ModelConfig, {**SMALL, "name": name, **kw})


@pytest.mark.parametrize("name", ["tsn", "task_in", "task_bn", "multi_decoder", "single_task", "rcm"])
@pytest.mark.parametrize("size", [(33, 47), (64, 64)])
def test_output_shapes_at_odd_sizes(name, size):
    model = build_model(small(name), TASKS).eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        out = model(x)
        one = model(x, task="semseg")
    assert set(out) == set(TASKS)
    for t, c in TASKS.items():
        assert out[t].shape == (2, c, *size)
    assert one.shape == (2, 8, *size)


@pytest.mark.parametrize("name", ["tsn", "task_in", "task_bn"])
def test_stacked_decoding_equals_per_task(name):
    torch.manual_seed(1)
    model = build_model(small(name), TASKS).eval()
    x = torch.randn(3, 3, 40, 56)
    with torch.no_grad():
        stacked = model(x, tasks=list(TASKS))
        for t in TASKS:
            assert (stacked[t] - model(x, task=t)).abs().max().item() <= 1e-5


def test_stacked_equals_per_task_in_training_mode_for_task_bn():
    model = build_model(small("task_bn"), TASKS).train()
    x = torch.randn(4, 3, 32, 32)
    stacked = model(x, tasks=["semseg", "depth"])
    assert torch.allclose(stacked["depth"], model(x, task="depth"), atol=1e-5)


def test_tasks_switch_the_output():
    model = build_model(small("tsn"), TASKS).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        a = model(x, task="edge")
        b = model(x, task="sal")  # same channel count, different task code
    assert (a - b).abs().max() > 1e-3


def test_gradients_reach_codes_embedding_and_decoder():
    model = build_model(small("tsn", code={"kind": "gaussian", "dim": 12, "learnable": True}), TASKS)
    out = model(torch.randn(2, 3, 32, 32), tasks=["semseg", "normals"])
    (out["semseg"].mean() + out["normals"].pow(2).mean()).backward()
    for name in ["codes.code_semseg", "codes.code_normals", "embedding.net.1.weight",
                 "decoder.ups.0.conv.weight", "decoder.ups.0.norm.affine.weight", "encoder.conv1.weight"]:
        p = dict(model.named_parameters())[name]
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert model.codes.code_edge.grad is None  # a task not run gets no gradient


def test_adain_matches_its_formula():
    torch.manual_seed(3)
    norm = AdaIN(4, latent_dim=5)
    with torch.no_grad():
        norm.affine.bias.normal_()
    x = torch.randn(2, 4, 6, 7)
    lat = torch.randn(2, 5)
    got = norm(x, Condition.stacked([0, 1], 1, lat))
    mu = x.mean(dim=(2, 3), keepdim=True)
    var = x.var(dim=(2, 3), unbiased=False, keepdim=True)
    xhat = (x - mu) / torch.sqrt(var + 1e-5)
    gb = lat @ (norm.affine.weight * math.sqrt(2 / 5)).T + norm.affine.bias
    want = gb[:, :4, None, None] * xhat + gb[:, 4:, None, None]
    assert torch.allclose(got, want, atol=1e-5)


def test_instance_norm_affine_keeps_values_gradients_and_memory_format():
    """The fused fold and its channels-last route equal IN followed by the
    per-row affine, in value and gradient, and a channels-last input gives a
    channels-last output (the next convolution expects it)."""
    from tsn.nn.norms import instance_norm_affine

    torch.manual_seed(0)
    x0, g0, b0 = torch.randn(6, 5, 7, 9), torch.randn(6, 5), torch.randn(6, 5)
    dy = torch.randn(6, 5, 7, 9)

    def run(fn, fmt):
        x = x0.clone(memory_format=fmt).requires_grad_()
        g, b = g0.clone().requires_grad_(), b0.clone().requires_grad_()
        y = fn(x, g, b)
        y.backward(dy)
        return y, x.grad, g.grad, b.grad

    ref = lambda x, g, b: g[:, :, None, None] * F.instance_norm(x) + b[:, :, None, None]  # noqa: E731
    want = run(ref, torch.contiguous_format)
    for fmt in (torch.contiguous_format, torch.channels_last):
        got = run(instance_norm_affine, fmt)
        assert got[0].is_contiguous(memory_format=fmt)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-5)


def test_adain_starts_as_identity_affine():
    norm = AdaIN(3, latent_dim=4)
    assert torch.equal(norm.affine.bias, torch.tensor([1.0, 1, 1, 0, 0, 0]))


def test_equal_lr_scales_at_run_time():
    lin = EqualLinear(8, 3)
    x = torch.randn(5, 8)
    assert torch.allclose(lin(x), x @ (lin.weight * math.sqrt(2 / 8)).T + lin.bias)
    assert not EqualLinear(8, 3, equalized=False).equalized


def test_embedding_defaults_and_pixel_norm():
    emb = TaskEmbedding(100)
    assert sum(isinstance(m, EqualLinear) for m in emb.modules()) == 8
    assert sum(p.numel() for p in emb.parameters()) == 8 * (100 * 100 + 100)
    ident = TaskEmbedding(4, n_fc=0)
    out = ident(torch.tensor([[2.0, 0, 0, 0]]))
    assert torch.allclose(out, torch.tensor([[2.0, 0, 0, 0]]))  # rms 1 after pixel norm


@pytest.mark.parametrize("t,d", [(5, 100), (6, 100), (4, 50), (3, 3)])
def test_orthogonal_codes_are_pairwise_orthogonal_blocks(t, d):
    c = make_codes("orthogonal", t, d)
    gram = c @ c.T
    block = d // t
    assert torch.equal(gram, torch.eye(t) * block)
    assert torch.equal(c.sum(1), torch.full((t,), float(block)))
    assert set(c.unique().tolist()) <= {0.0, 1.0}


def test_gaussian_codes_are_seeded_and_onehot_is_identity():
    assert torch.equal(make_codes("gaussian", 3, 10, seed=4), make_codes("gaussian", 3, 10, seed=4))
    assert not torch.equal(make_codes("gaussian", 3, 10, seed=4), make_codes("gaussian", 3, 10, seed=5))
    assert torch.equal(make_codes("onehot", 3, 5), torch.eye(3, 5))


def test_codes_from_file(tmp_path):
    import numpy as np

    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "c.npy", arr)
    torch.save(torch.from_numpy(arr), tmp_path / "c.pt")
    for f in ("c.npy", "c.pt"):
        assert torch.equal(make_codes("file", 3, 4, path=str(tmp_path / f)), torch.from_numpy(arr))
    with pytest.raises(ConfigError, match="expected \\(2, 4\\)"):
        make_codes("file", 2, 4, path=str(tmp_path / "c.npy"))
    with pytest.raises(ConfigError, match="not found"):
        make_codes("file", 2, 4, path=str(tmp_path / "missing.npy"))


def test_codebook_extends_with_an_orthogonal_code():
    book = build_codebook(["a", "b"], "orthogonal", dim=6)
    new = book.add_task("c")
    assert torch.allclose(book.table()[:2] @ new, torch.zeros(2), atol=1e-5)
    assert book.table().shape == (3, 6)
    assert "code_c" in dict(book.named_buffers())
    book.add_task("d", torch.ones(6), learnable=True)
    assert "code_d" in dict(book.named_parameters())
    with pytest.raises(ConfigError, match="already"):
        book.add_task("a")


def test_code_can_be_swapped_at_inference():
    model = build_model(small("tsn"), TASKS).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        own = model(x, task="semseg", code=model.codes.code("semseg"))
        assert torch.allclose(own, model(x, task="semseg"), atol=1e-5)
        other = model(x, task="semseg", code=model.codes.code("parts"))
    assert (other - own).abs().max() > 1e-4


def test_seeded_construction_is_deterministic():
    torch.manual_seed(7)
    a = build_model(small("tsn"), TASKS)
    torch.manual_seed(7)
    b = build_model(small("tsn"), TASKS)
    for (n, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(p, q), n


def test_slice_head_gives_each_task_its_own_channels():
    model = build_model(small("tsn", head="slice"), TASKS)
    assert model.heads.width == sum(TASKS.values())
    assert model.decoder.out_conv.out_channels == sum(TASKS.values())


def test_mean_head_averages_channel_groups():
    from tsn.models.heads import TaskHeads

    heads = TaskHeads("mean", {"a": 3, "b": 1, "c": 6}, width=6)
    y = torch.arange(6.0).reshape(1, 6, 1, 1)
    assert heads(y, "a").flatten().tolist() == [0.5, 2.5, 4.5]
    assert heads(y, "b").flatten().tolist() == [2.5]
    assert torch.equal(heads(y, "c"), y)


def test_add_task_keeps_old_outputs():
    """Per-task decoding is bit-identical after add_task; the stacked all-task
    pass decodes a taller batch (4 tasks instead of 3), whose convolutions may
    sum in another order, so it is only equal to float tolerance."""
    old = ["edge", "semseg", "normals"]
    model = build_model(small("tsn"), {k: TASKS[k] for k in old}).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = {t: model(x, task=t) for t in old}
        before_stacked = model(x)
        model.add_task("depth", 1)
        after = {t: model(x, task=t) for t in old}
        after_stacked = model(x)
    assert set(after_stacked) == {"edge", "semseg", "normals", "depth"}
    for t in old:
        assert torch.equal(before[t], after[t]), t
        torch.testing.assert_close(after_stacked[t], before_stacked[t], rtol=1e-5, atol=1e-5)


def test_bad_names_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown model 'tsnn'; valid: .*single_task.*tsn"):
        build_model(small("tsnn"), TASKS)
    with pytest.raises(ConfigError, match="unknown config key bogus"):
        from_dict(ModelConfig, {"bogus": 1})
    with pytest.raises(ConfigError, match="model.options.tsn.code.dim: expected int"):  # checked by the builder
        build_model(from_dict(ModelConfig, {"code": {"dim": "big"}}), TASKS)
    with pytest.raises(ConfigError, match="model.options.multi_decoder.code: not an option of model 'multi_decoder'"):
        build_model(from_dict(ModelConfig, {"name": "multi_decoder", "options": {"multi_decoder": {"code": {}}}}), TASKS)
    with pytest.raises(ConfigError, match="unknown task code"):
        build_model(small("tsn", code={"kind": "fancy", "dim": 12}), TASKS)
    model = build_model(small("tsn"), TASKS)
    with pytest.raises(ConfigError, match="no task 'foo'"):
        model(torch.randn(1, 3, 32, 32), task="foo")
    assert set(list_models()) == {"tsn", "task_in", "task_bn", "multi_decoder", "single_task", "rcm",
                                  "cross_stitch", "nddr", "mtan", "padnet", "mtinet"}


def test_pretrained_weights_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(ConfigError, match="not in the torch cache.*put https://"):
        build_model(ModelConfig(pretrained=True), {"semseg": 21})
    with pytest.raises(ConfigError, match="no state dict at"):
        build_model(ModelConfig(pretrained=str(tmp_path / "nope.pth")), {"semseg": 21})


def test_pretrained_from_a_state_dict_path(tmp_path):
    from torchvision.models import resnet18

    ref = resnet18()
    torch.save(ref.state_dict(), tmp_path / "r18.pth")
    model = build_model(ModelConfig(pretrained=str(tmp_path / "r18.pth")), {"semseg": 21})
    assert torch.equal(model.encoder.layer3[1].conv2.weight, ref.layer3[1].conv2.weight)


def test_rcm_freezes_shared_filters_and_trains_modulators():
    model = build_model(small("rcm"), {"semseg": 8, "depth": 1})
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all(".shared." in n for n in frozen)
    out = model(torch.randn(2, 3, 32, 32), task="depth")
    out.mean().backward()
    mods = [p for n, p in model.named_parameters() if "modulators.1" in n]
    assert mods and all(p.grad is not None for p in mods)
    assert all(p.grad is None for n, p in model.named_parameters() if "modulators.0" in n)


def test_decoder_widths_follow_the_reference():
    model = build_model(ModelConfig(), {"semseg": 21})
    dec = model.decoder
    assert [b.conv.out_channels for b in dec.skips] == [64, 64, 128, 256, 512]
    assert [(b.conv.in_channels, b.conv.out_channels) for b in dec.ups] == [(768, 512), (640, 256), (320, 256), (320, 128)]
    assert (dec.final.conv.in_channels, dec.final.conv.out_channels) == (128, 64)
    assert dec.out_conv.out_channels == 21
    assert sum(isinstance(m, AdaIN) for m in model.modules()) == 10
    assert isinstance(dec.ups[0].act, torch.nn.LeakyReLU) and dec.ups[0].act.negative_slope == 0.01


def test_decoder_interpolation_is_align_corners_bilinear():
    from tsn.models.decoders import upsample

    x = torch.randn(1, 2, 3, 4)
    assert torch.equal(upsample(x, (6, 8)), F.interpolate(x, size=(6, 8), mode="bilinear", align_corners=True))


def test_channels_last_upsample_behind_a_concat_has_the_nchw_gradient():
    """The decoder's pattern cat([up(x), skip]) -> conv: on a channels-last
    map the upsampling hands a channels-last gradient back (a fast path),
    equal to the NCHW computation."""
    from tsn.models.decoders import upsample

    torch.manual_seed(0)
    x0, skip, w = torch.randn(3, 4, 5, 6), torch.randn(3, 2, 9, 11), torch.randn(5, 6, 3, 3)
    grads = []
    for fmt in (torch.contiguous_format, torch.channels_last):
        x = x0.clone(memory_format=fmt).requires_grad_()
        y = F.conv2d(torch.cat([upsample(x, (9, 11)), skip.contiguous(memory_format=fmt)], dim=1), w.contiguous(memory_format=fmt))
        (y * torch.arange(y.numel()).view_as(y).sin()).sum().backward()
        grads.append(x.grad)
    assert grads[1].is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(grads[1], grads[0], atol=1e-5, rtol=1e-5)


def test_tsn_count_does_not_grow_with_tasks_and_baselines_do():
    from eval.scaling import scaling_rows

    rows = scaling_rows(9)
    by = {m: [r["params"] for r in rows if r["method"] == m] for m in {r["method"] for r in rows}}
    assert len(set(by["tsn"])) == 1  # fixed codes are buffers: exactly flat
    per_task = {m: by[m][1] - by[m][0] for m in by}
    assert per_task["task_in"] == 2 * (64 + 64 + 128 + 256 + 512 + 512 + 256 + 256 + 128 + 64)
    assert abs(per_task["single_task"] - 17.73e6) < 0.01e6 and abs(per_task["multi_decoder"] - 6.55e6) < 0.01e6
    assert 1.3e6 < per_task["rcm"] - per_task["multi_decoder"] < 1.6e6  # RCM's modulators and BNs per task


def test_params_cli_json(capsys):
    import json

    from eval.__main__ import main

    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    assert main(["params", str(root / "configs/pascal/tsn.yaml"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["model"] == "tsn" and rep["tasks"] == ["edge", "semseg", "parts", "normals", "sal"]
    assert rep["params"] == 18256565 and rep["by_part"]["encoder"] == 11176512
