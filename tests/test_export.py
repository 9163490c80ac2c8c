"""python -m eval export: TorchScript and ONNX graphs of the stacked decoder equal eager PyTorch.

Measured max abs differences on these tiny runs (random inputs, 2x3x32x32
and 3x3x48x80, all tasks): TorchScript about 5e-6, ONNX Runtime about
1.5e-5 (its own kernels and the exportable instance norm); the bounds below
are 10x those.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

import tsn
from eval.__main__ import main as eval_main
from tsn.export import ExportError, ExportGraph, export_model
from tsn.models.base import MultiTaskModel

SHAPES = [(2, 3, 32, 32), (3, 3, 48, 80), (1, 3, 40, 40)]


def _eager(model, x):
    with torch.no_grad():
        return model(x)


def _inputs():
    g = torch.Generator().manual_seed(3)
    return [torch.randn(*s, generator=g) for s in SHAPES]


def _export_cli(capsys, *argv) -> tuple[int, str]:
    rc = eval_main(["export", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out + err


def test_torchscript_equals_eager_at_any_batch_and_size(run_dir, model, tmp_path, capsys):
    out = tmp_path / "tsn.pt"
    rc, msg = _export_cli(capsys, run_dir, "--format", "torchscript", "--out", out)
    assert rc == 0, msg
    g = torch.jit.load(str(out))
    for x in _inputs():
        ref, got = _eager(model, x), g(x)
        assert list(got) == ["edge", "semseg", "normals"]
        diff = max(float((ref[t] - got[t]).abs().max()) for t in ref)
        assert diff < 5e-5, (tuple(x.shape), diff)


def test_onnx_equals_eager_with_dynamic_axes(run_dir, model, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'tsn[onnx]')")
    pytest.importorskip("onnx", reason="onnx is not installed (pip install 'tsn[onnx]')")
    out = tmp_path / "tsn.onnx"
    rc, msg = _export_cli(capsys, run_dir, "--format", "onnx", "--out", out, "--dynamic")
    assert rc == 0 and "any batch and size" in msg, msg
    s = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in s.get_inputs()] == ["image"]
    assert [o.name for o in s.get_outputs()] == ["edge", "semseg", "normals"]
    for x in _inputs():
        ref = _eager(model, x)
        got = dict(zip([o.name for o in s.get_outputs()], s.run(None, {"image": x.numpy()})))
        diff = max(float(np.abs(ref[t].numpy() - got[t]).max()) for t in ref)
        assert diff < 2e-4, (tuple(x.shape), diff)


def test_onnx_fixed_shape_and_task_subset(run_dir, model, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'tsn[onnx]')")
    pytest.importorskip("onnx", reason="onnx is not installed (pip install 'tsn[onnx]')")
    out = tmp_path / "semseg.onnx"
    rc, msg = _export_cli(capsys, run_dir, "--format", "onnx", "--out", out, "--tasks", "semseg", "edge",
                          "--size", "48", "64", "--batch", "2")
    assert rc == 0, msg
    s = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert s.get_inputs()[0].shape == [2, 3, 48, 64]
    assert [o.name for o in s.get_outputs()] == ["semseg", "edge"]
    x = torch.randn(2, 3, 48, 64)
    got = s.run(None, {"image": x.numpy()})
    ref = _eager(model, x)
    assert float(np.abs(ref["semseg"].numpy() - got[0]).max()) < 2e-4


@pytest.mark.parametrize("kind", ["task_bn", "multi_decoder", "rcm"])
def test_every_model_kind_traces(tmp_path, kind):
    """Other kinds take other paths (per-task BN blocks, per-task decoders, switched encoder)."""
    from tsn.config import load_config
    from tsn.models import build_model
    from test_pipeline import tiny

    m = build_model(load_config(data=tiny(model={"name": kind})).model, {"edge": 1, "semseg": 10}).eval()
    g = torch.jit.load(io.BytesIO(export_model(m, "torchscript", size=(32, 32))))
    for x in _inputs()[:2]:
        ref, got = _eager(m, x), g(x)
        assert max(float((ref[t] - got[t]).abs().max()) for t in ref) < 5e-5


def test_untraceable_kind_and_unknown_task_are_one_line(model):
    class Custom(MultiTaskModel):
        def forward_tasks(self, x, tasks, code=None):
            return {t: x for t in tasks}

    with pytest.raises(ExportError, match="cannot export a Custom: the exporter traces TaskSwitchingNet"):
        ExportGraph(Custom({"edge": 1}))
    with pytest.raises(tsn.errors.ConfigError, match="the model has no task depth"):
        export_model(model, "onnx", tasks=["depth"])


@pytest.mark.parametrize("case", ["unknown_task", "no_checkpoint", "exists", "small_size", "folder"])
def test_cli_bad_input_is_one_line_and_writes_nothing(run_dir, tmp_path, capsys, case):
    out = tmp_path / "m.pt"
    (tmp_path / "empty").mkdir()
    argv, expect = {
        "unknown_task": ([run_dir, "--tasks", "depth"], "the model has no task depth"),
        "no_checkpoint": ([tmp_path / "empty"], "no checkpoint in"),
        "exists": ([run_dir], "exists; pass --overwrite"),
        "small_size": ([run_dir, "--size", "16", "64"], "below the network's minimum of 32 px"),
        "folder": ([run_dir, "--out", tmp_path / "empty", "--overwrite"], "is a folder"),
    }[case]
    if case == "exists":
        out.write_bytes(b"mine")
    rc, msg = _export_cli(capsys, *argv[:1], "--format", "torchscript", *(["--out", out] if "--out" not in argv else []),
                          *argv[1:])
    lines = [x for x in msg.splitlines() if x.startswith("error: ")]
    assert rc == 2 and len(lines) == 1 and expect in lines[0], msg
    assert (out.read_bytes() == b"mine") if case == "exists" else not out.exists()
    assert list((tmp_path / "empty").iterdir()) == []


def test_inference_benchmark_rows_agree(tmp_path):
    """Not a timing test: the three runtimes compute the same outputs and every row is filled."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("bench_inference", Path(__file__).resolve().parents[1] / "benchmarks" / "bench_inference.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "b.json"
    assert bench.main(["--size", "32", "--batches", "1,2", "--repeats", "1", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    names = {r["runtime"] for r in data["rows"]}
    assert {"eager", "torchscript"} <= names
    assert len(data["rows"]) == 2 * len(names) and len(data["meta"]["tasks"]) == 6
    for r in data["rows"]:
        assert r["images_per_s"] > 0 and r["max_abs_diff_vs_eager"] < 1e-4
