"""Training and all-task inference throughput, FLOP/s and utilisation.

    python benchmarks/bench_throughput.py [--device auto] [--widths quarter,paper]
        [--sizes 64,128,256] [--batch 16] [--tasks 5] [--models tsn,multi_decoder,task_in,single_task]
        [--amp] [--channels-last] [--compile] [--repeats 3] [--json PATH] [--quick]

Training: images/s of one optimizer step that trains ALL tasks on a batch
(the trainer's ``all`` strategy: forward, the real losses, backward, Adam).
Inference: all tasks per image, TSN three ways -- (a) the encoder re-run per
task, (b) the encoder once and the decoder looped over tasks, (c) the
encoder once and ONE decoder pass on the task-stacked batch (the model's own
forward) -- checked to give the same outputs, plus multi-decoder and
single-task. FLOPs come from torch.utils.flop_counter; utilisation is the
achieved FLOP/s over a dense matmul of the same dtype timed in the same run,
right next to each row (the CPU is shared, so a ratio is only fair against a
matmul timed at the same moment). Peak memory is the CUDA allocator's peak,
or on CPU the peak of tensor storage counted by a dispatch mode.

Widths: ``quarter`` is configs/synthetic/base.yaml (what CPU users train);
``paper`` is configs/pascal/base.yaml (ResNet-18, full decoder widths) with
no pretrained weights.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import sys
import weakref
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch._dynamo  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils._pytree import tree_leaves  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

ALL_TASKS = ["edge", "semseg", "parts", "normals", "sal", "depth"]
WIDTHS = {"quarter": ("configs/synthetic/base.yaml", "synthetic"), "paper": ("configs/pascal/base.yaml", "pascal")}


# ---------------------------------------------------------------- measurement

def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int, min_s: float = 0.2) -> float:
    """Median seconds per call over ``repeats`` timings; each timing runs the
    call enough times to last ``min_s`` (GPU steps take milliseconds)."""
    fn()  # warm-up: allocator, oneDNN primitives, cuDNN autotune, compilation
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    one = time.perf_counter() - t
    iters = max(1, math.ceil(min_s / max(one, 1e-6))) if one < min_s else 1
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(iters):
            fn()
        sync(device)
        out.append((time.perf_counter() - t) / iters)
    return statistics.median(out)


def matmul_flops(device: torch.device, dtype: torch.dtype, repeats: int = 3) -> float:
    """FLOP/s of a dense square matmul: the machine's practical peak."""
    n = 2048 if device.type == "cpu" else 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n ** 3 / timed(lambda: a @ b, device, repeats, min_s=0.1)


class TensorMemory(TorchDispatchMode):
    """Peak bytes of tensor storage allocated inside the block (CPU has no
    allocator statistics, and RSS keeps freed pages). A storage counts from
    the op that creates it until its last tensor dies; storages that existed
    before (parameters, the batch, in-place targets) do not count."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: dict[int, list[int]] = {}  # data_ptr -> [live tensors, bytes]
        self.cur = self.peak = 0

    def _drop(self, key: int) -> None:
        ref = self.refs.get(key)
        if ref is not None:
            ref[0] -= 1
            if ref[0] == 0:
                self.cur -= self.refs.pop(key)[1]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        old = {a.untyped_storage().data_ptr() for a in tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)}
        for t in tree_leaves(out):
            if not isinstance(t, torch.Tensor) or t.device.type == "meta":
                continue
            st = t.untyped_storage()
            key = st.data_ptr()
            if key == 0 or (key in old and key not in self.refs):
                continue
            ref = self.refs.setdefault(key, [0, st.nbytes()])
            if ref[0] == 0:
                self.cur += ref[1]
                self.peak = max(self.peak, self.cur)
            ref[0] += 1
            weakref.finalize(t, self._drop, key)
        return out


class PeakMemory:
    """Peak memory of the block above what was live before it: the CUDA
    allocator's own peak, or on CPU the tensor storage peak (TensorMemory)."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.peak = device, 0

    def __enter__(self):
        if self.device.type == "cuda":
            sync(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        else:
            self.mode = TensorMemory().__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            sync(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device) - self.base
        else:
            self.mode.__exit__(*exc)
            self.peak = self.mode.peak


def count_flops_and_memory(fn, device: torch.device) -> tuple[int, int]:
    """FLOPs of one call (compiled parts run eagerly here so that every op is
    seen) and its peak memory. On CUDA the memory is read from a separate,
    compiled call; on CPU from the same eager call."""
    old, torch._dynamo.config.disable = torch._dynamo.config.disable, True
    try:
        with FlopCounterMode(display=False) as fc, (PeakMemory(device) if device.type == "cpu" else nullcontext()) as mem:
            fn()
    finally:
        torch._dynamo.config.disable = old
    if device.type != "cpu":
        with PeakMemory(device) as mem:
            fn()
    return fc.get_total_flops(), mem.peak


# ---------------------------------------------------------------- models and data

def build(width: str, name: str, tasks: list[str], device: torch.device, channels_last: bool, compile_: bool):
    from tsn.config import load_config
    from tsn.models import build_model
    from tsn.models.registry import task_channels_for

    cfg_path, dataset = WIDTHS[width]
    cfg = load_config(ROOT / cfg_path, [f"model.name={name}", "model.pretrained=false"])
    model = build_model(cfg.model, task_channels_for(tasks, dataset)).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compile_:  # in place, so (a)/(b)/(c) and training all run the compiled parts
        for m in model.modules():
            if type(m).__name__ in ("ResNetEncoder", "UNetDecoder"):
                m.compile()
    return model, cfg


_BATCHES: dict = {}


def batch_for(size: int, n: int, tasks: list[str], device: torch.device, channels_last: bool) -> dict:
    """A real collated synthetic batch (images and every task's labels)."""
    key = (size, n, tuple(tasks), str(device), channels_last)
    if key not in _BATCHES:
        from tsn.data import build_dataset, collate
        from tsn.engine.evaluate import to_device

        ds = build_dataset("synthetic", split="train", tasks=tasks, size=size, length=n)
        _BATCHES[key] = to_device(collate([ds[i] for i in range(n)]), device, channels_last)
    return _BATCHES[key]


def autocast(device: torch.device, amp: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if amp else nullcontext()


def make_train_step(model, cfg, batch: dict, tasks: list[str], amp: bool, device: torch.device):
    """One ``all``-strategy step as the trainer runs it: every task on the
    batch, the trainer's criterion (with PAD-Net's and MTI-Net's
    deep-supervision terms) and the config's fixed weights, backward, Adam."""
    from tsn.engine.factory import build_criterion
    from tsn.engine.optim import build_optimizer

    crit = build_criterion(cfg, tasks)
    weights = {t: float(cfg.loss.weights.get(t, 1.0)) for t in tasks}
    opt = build_optimizer(cfg.optim, model)
    model.train()

    def step() -> torch.Tensor:
        with autocast(device, amp):
            preds = model(batch["image"], tasks=tasks)
        losses = crit({k: p.float() for k, p in preds.items()}, {t: batch[t] for t in tasks})
        total = sum(weights[t] * v for t, v in losses.items())
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        return total.detach()  # not synchronised here: the timing loop never reads it

    return step


def infer_encoder_per_task(model, x, tasks):
    """(a) the naive schedule: the whole network once per task."""
    from tsn.nn.condition import Condition

    lat, b, out = model.latents(tasks), x.shape[0], {}
    for i, t in enumerate(tasks):
        cond = Condition.stacked([model.tasks.index(t)], b, lat[i : i + 1])
        out[t] = model.heads(model.decoder(model.encoder(x), cond, x.shape[-2:]), t)
    return out


def infer_decoder_loop(model, x, tasks):
    """(b) the encoder once, the decoder (skips included) once per task."""
    from tsn.nn.condition import Condition

    feats, lat, b, out = model.encoder(x), model.latents(tasks), x.shape[0], {}
    for i, t in enumerate(tasks):
        cond = Condition.stacked([model.tasks.index(t)], b, lat[i : i + 1])
        out[t] = model.heads(model.decoder(feats, cond, x.shape[-2:]), t)
    return out


def infer_stacked(model, x, tasks):
    """(c) the model's forward: the encoder once, ONE decoder pass on T*B rows."""
    return model(x, tasks=tasks)


# ---------------------------------------------------------------- the runs

def row(device, repeats, mm_dtype, fn, images=1) -> dict:
    """Time ``fn``, then count its FLOPs and peak memory; the matmul
    reference is timed right before and after it."""
    mm0 = matmul_flops(device, mm_dtype)
    t = timed(fn, device, repeats)
    mm = (mm0 + matmul_flops(device, mm_dtype)) / 2
    flops, peak = count_flops_and_memory(fn, device)
    return {"s_per_step": t, "images_per_s": images / t, "gflop_per_image": flops / images / 1e9,
            "achieved_gflops": flops / t / 1e9, "matmul_gflops": mm / 1e9, "utilisation": flops / t / mm,
            "peak_mem_mb": peak / 2 ** 20}


def run_training(args, device, width, size, models, tasks, log) -> list[dict]:
    rows = []
    batch = batch_for(size, args.batch, tasks, device, args.channels_last)
    for name in models:
        torch.manual_seed(0)
        model, cfg = build(width, name, tasks, device, args.channels_last, args.compile)
        step = make_train_step(model, cfg, batch, tasks, args.amp, device)
        r = {"kind": "train", "width": width, "size": size, "model": name,
             **row(device, args.repeats, args.mm_dtype, step, images=args.batch)}
        rows.append(r)
        log(r)
        del model, step
    return rows


def max_diff(a: dict, b: dict) -> float:
    return max((a[t].float() - b[t].float()).abs().max().item() for t in a)


def run_inference(args, device, width, size, models, tasks, log) -> list[dict]:
    rows = []
    x = batch_for(size, args.batch, tasks, device, args.channels_last)["image"]
    torch.manual_seed(0)
    tsn, _ = build(width, "tsn", tasks, device, args.channels_last, args.compile)
    tsn.eval()
    ways = {"tsn (a) encoder per task": infer_encoder_per_task, "tsn (b) decoder loop": infer_decoder_loop,
            "tsn (c) stacked": infer_stacked}
    with torch.no_grad(), autocast(device, args.amp):
        outs = {k: f(tsn, x, tasks) for k, f in ways.items()}
        ref = outs["tsn (c) stacked"]
        for k, f in ways.items():
            r = {"kind": "infer", "width": width, "size": size, "model": k,
                 "max_abs_diff_vs_c": max_diff(outs[k], ref),
                 **row(device, args.repeats, args.mm_dtype, lambda f=f: f(tsn, x, tasks), images=args.batch)}
            rows.append(r)
            log(r)
        del tsn, outs
        for name in [m for m in models if m in ("multi_decoder", "task_in", "single_task")]:
            torch.manual_seed(0)
            model, _ = build(width, name, tasks, device, args.channels_last, args.compile)
            model.eval()
            r = {"kind": "infer", "width": width, "size": size, "model": name,
                 **row(device, args.repeats, args.mm_dtype, lambda: model(x, tasks=tasks), images=args.batch)}
            rows.append(r)
            log(r)
            del model
    a, b, c = (next(r for r in rows if r["model"].startswith(f"tsn ({k})")) for k in "abc")
    c["speedup_vs_a"] = c["images_per_s"] / a["images_per_s"]
    c["speedup_vs_b"] = c["images_per_s"] / b["images_per_s"]
    return rows


def fmt(r: dict) -> str:
    extra = ""
    if "max_abs_diff_vs_c" in r:
        extra += f" diff {r['max_abs_diff_vs_c']:.1e}"
    if "speedup_vs_a" in r:
        extra += f" c/a {r['speedup_vs_a']:.2f}x c/b {r['speedup_vs_b']:.2f}x"
    return (f"{r['kind']:<6}{r['width']:<8}{r['size']:>4}  {r['model']:<26}{r['images_per_s']:>9.1f}"
            f"{r['gflop_per_image']:>9.2f}{r['achieved_gflops']:>10.1f}{r['matmul_gflops']:>10.1f}"
            f"{100 * r['utilisation']:>7.1f}%{r['peak_mem_mb']:>9.0f}{extra}")


HEADER = (f"{'kind':<6}{'width':<8}{'size':>4}  {'model':<26}{'img/s':>9}{'GFLOP/im':>9}{'GFLOP/s':>10}"
          f"{'mm GF/s':>10}{'util':>8}{'peak MB':>9}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda, cuda:1, ...")
    ap.add_argument("--widths", default="quarter,paper", help="comma list of quarter, paper")
    ap.add_argument("--sizes", default="64,128,256")
    ap.add_argument("--infer-sizes", default=None, help="sizes of the inference rows (default: --sizes)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--tasks", type=int, default=5, help="the first N of " + ",".join(ALL_TASKS) + " (paper widths: N <= 5)")
    ap.add_argument("--models", default="tsn,multi_decoder,task_in,single_task", help="training rows (and inference baselines)")
    ap.add_argument("--skip", default="", help="comma list of sections to skip: train, infer")
    ap.add_argument("--amp", action="store_true", help="bf16 autocast (the matmul reference is then bf16)")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--compile", action="store_true", help="torch.compile every encoder and decoder in place")
    ap.add_argument("--repeats", type=int, default=3, help="timings per row; the median is reported")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    ap.add_argument("--json", default=None, help="also write every row here")
    ap.add_argument("--quick", action="store_true", help="128 px only, 2 repeats (one command on a GPU in minutes)")
    args = ap.parse_args(argv)

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    from tsn.errors import ConfigError
    from tsn.runtime import tune_cpu_allocator

    try:
        allocator = "tuned" if tune_cpu_allocator() else "system"  # what the train/eval commands run with
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.sizes, args.repeats = "128", min(args.repeats, 2)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # fp32 means fp32
    if args.compile:
        torch._dynamo.config.cache_size_limit = 64  # sizes and T*B vs B rows are new shapes
    args.mm_dtype = torch.bfloat16 if args.amp else torch.float32
    tasks = ALL_TASKS[: args.tasks]
    sizes = [int(s) for s in args.sizes.split(",")]
    infer_sizes = [int(s) for s in (args.infer_sizes or args.sizes).split(",")]
    models = [m for m in args.models.split(",") if m]
    skip = set(args.skip.split(","))
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    opts = f"amp={args.amp} channels_last={args.channels_last} compile={args.compile} cpu_allocator={allocator}"
    print(f"device {device} ({dev_name}), {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"batch {args.batch}, {len(tasks)} tasks, {opts}, median of {args.repeats}", flush=True)
    print(HEADER, flush=True)
    rows: list[dict] = []
    log = lambda r: print(fmt(r), flush=True)  # noqa: E731
    for width in args.widths.split(","):
        if "train" not in skip:
            for size in sizes:
                rows += run_training(args, device, width, size, models, tasks, log)
        if "infer" not in skip:
            for size in infer_sizes:
                rows += run_inference(args, device, width, size, models, tasks, log)
    max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)  # the whole run's peak
    print(f"\nsummary (process max RSS {max_rss_mb:.0f} MB)")
    for r in rows:
        if "speedup_vs_a" in r:
            print(f"  infer {r['width']} {r['size']}px: stacked (c) {r['speedup_vs_a']:.2f}x (a), {r['speedup_vs_b']:.2f}x (b)")
        if r["kind"] == "train" and r["model"] == "tsn":
            print(f"  train tsn {r['width']} {r['size']}px: {100 * r['utilisation']:.1f}% of matmul FLOP/s")
    if args.json:
        meta = {"device": str(device), "device_name": dev_name, "threads": torch.get_num_threads(),
                "torch": torch.__version__, "batch": args.batch, "tasks": tasks, "amp": args.amp,
                "channels_last": args.channels_last, "compile": args.compile, "cpu_allocator": allocator,
                "repeats": args.repeats, "max_rss_mb": max_rss_mb,
                "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])}
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
