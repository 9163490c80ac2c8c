"""The throughput benchmark runs end to end and its FLOP bookkeeping adds up.

Not a timing test: it checks that (a), (b) and (c) give the same outputs on
the channels-last CPU path, and that the FLOP counts differ exactly by what
each schedule repeats."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _load_bench():
    return _load("bench_throughput")


def test_throughput_benchmark_rows_and_flop_accounting(tmp_path, capsys):
    bench = _load_bench()
    out = tmp_path / "bench.json"
    rc = bench.main(["--device", "cpu", "--widths", "quarter", "--sizes", "32", "--models", "tsn,multi_decoder",
                     "--tasks", "3", "--batch", "4", "--repeats", "1", "--channels-last", "--json", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["meta"]["channels_last"] is True and data["meta"]["tasks"] == ["edge", "semseg", "parts"]
    rows = {(r["kind"], r["model"]): r for r in data["rows"]}
    assert set(rows) == {("train", "tsn"), ("train", "multi_decoder"), ("infer", "tsn (a) encoder per task"),
                         ("infer", "tsn (b) decoder loop"), ("infer", "tsn (c) stacked"), ("infer", "multi_decoder")}
    a, b, c = (rows[("infer", k)] for k in ("tsn (a) encoder per task", "tsn (b) decoder loop", "tsn (c) stacked"))
    assert a["max_abs_diff_vs_c"] < 1e-4 and b["max_abs_diff_vs_c"] < 1e-4
    # (a) re-runs the encoder and (b) the skip convolutions per task; (c) runs both once
    assert a["gflop_per_image"] > b["gflop_per_image"] > c["gflop_per_image"] > 0
    assert c["speedup_vs_a"] == c["images_per_s"] / a["images_per_s"]
    for r in data["rows"]:
        assert r["images_per_s"] > 0 and 0 < r["utilisation"] and r["peak_mem_mb"] > 0
    assert "stacked (c)" in capsys.readouterr().out


def test_encoder_flops_explain_the_gap_between_a_and_c():
    """FLOPs(a) - FLOPs(c) = (T - 1) x the encoder's FLOPs + (T - 1) x the skip convolutions':
    the exact bound on what sharing the encoder can save (docs/PERFORMANCE.md)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    bench = _load_bench()
    tasks = ["edge", "semseg", "parts"]
    model, _ = bench.build("quarter", "tsn", tasks, torch.device("cpu"), False, False)
    model.eval()
    x = torch.randn(2, 3, 32, 32)

    def flops(fn) -> int:
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            fn()
        return fc.get_total_flops()

    enc = flops(lambda: model.encoder(x))
    feats = model.encoder(x)
    skips = flops(lambda: [blk.conv(f) for blk, f in zip(model.decoder.skips, feats)])
    fa, fb, fc = (flops(lambda f=f: f(model, x, tasks)) for f in
                  (bench.infer_encoder_per_task, bench.infer_decoder_loop, bench.infer_stacked))
    t = len(tasks)
    assert fa - fb == (t - 1) * enc
    assert fb - fc == (t - 1) * skips


def test_training_rows_of_padnet_and_mtinet_include_their_deep_supervision():
    """The benchmark's step is the trainer's: PAD-Net's and MTI-Net's
    intermediate predictions are supervised too, so their step costs what
    training them costs (its loss is the full loss, above the final-only one)."""
    import torch

    from tsn.losses import MultiTaskLoss
    from tsn.models.mtl_blocks import AUX_SEP

    bench = _load_bench()
    tasks = ["edge", "semseg", "normals"]
    batch = bench.batch_for(32, 2, tasks, torch.device("cpu"), False)
    for name in ("padnet", "mtinet"):
        torch.manual_seed(0)
        model, cfg = bench.build("quarter", name, tasks, torch.device("cpu"), False, False)
        model.train()
        weights = {t: float(cfg.loss.weights.get(t, 1.0)) for t in tasks}
        with torch.no_grad():
            preds = model(batch["image"], tasks=tasks)
            final = MultiTaskLoss(tasks, cfg.loss.options)({t: preds[t] for t in tasks}, {t: batch[t] for t in tasks})
        assert any(AUX_SEP in k for k in preds), name
        full = bench.make_train_step(model, cfg, batch, tasks, False, torch.device("cpu"))()
        assert float(full) > sum(weights[t] * float(v) for t, v in final.items()), name


def test_edge_resolution_oracle_by_hand():
    import torch

    bench = _load("edge_resolution")
    gt = torch.zeros(1, 1, 8, 8)
    gt[..., 3, :] = 1  # a one-pixel horizontal boundary
    gt[..., 0, 0] = 255  # void counts as no edge
    full = torch.sigmoid(bench.oracle_logits(gt, 1))
    assert torch.equal(full > 0.5, gt == 1)
    # stride 4: rows 0-3 pool to 1/4 (1 edge row of 4), rows 4-7 to 0; bilinear (align_corners) back to 8 rows
    coarse = torch.sigmoid(bench.oracle_logits(gt, 4))
    assert coarse.shape == gt.shape
    assert torch.allclose(coarse[0, 0, 0], torch.full((8,), 0.25), atol=1e-5)
    assert torch.allclose(coarse[0, 0, 7], torch.full((8,), 1e-6), atol=1e-6)
    assert (coarse < 0.5).all()  # a boundary of one pixel in four never reaches one half: what H/4 loses


def test_edge_resolution_end_to_end_coarser_scores_lower(capsys):
    out = _load("edge_resolution").main([str(ROOT / "configs/synthetic/tsn.yaml"), "--strides", "1", "4",
                                         "--set", "data.options.length.val=6", "data.options.cache=false"])
    assert set(out) == {1, 4} and out[1]["odsF"] > 90 and out[4]["odsF"] < out[1]["odsF"] / 2
    assert "stride" in capsys.readouterr().out
