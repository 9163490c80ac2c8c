"""Does the synthetic data pipeline keep up with training?

    python benchmarks/bench_pipeline.py [--size 64] [--batches 12] [--model tsn] [--json PATH]

One epoch of the trainer's loop -- the trainer's own DataLoader
(tsn.engine.trainer.build_data over the synthetic dataset, augmentation on)
feeding ``all``-strategy training steps -- against the same steps on
batches generated beforehand and held in memory. Rows: cache on/off x
num_workers 0/1; with the cache on, the second epoch is timed (the first
fills it). Target: the loader epoch within 10% of the pre-generated one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/synthetic/tsn.yaml")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batches", type=int, default=12, help="batches per epoch")
    ap.add_argument("--model", default="tsn")
    ap.add_argument("--repeats", type=int, default=3, help="epochs timed per row (median)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from tsn.config import load_config
    from tsn.engine.evaluate import to_device
    from tsn.engine.optim import build_optimizer
    from tsn.engine.sampling import _mix
    from tsn.engine.trainer import build_data
    from tsn.losses import MultiTaskLoss
    from tsn.models import build_model
    from tsn.models.registry import task_channels_for
    from tsn.errors import ConfigError
    from tsn.runtime import tune_cpu_allocator

    device = torch.device(args.device)
    if device.type == "cpu":
        try:
            tune_cpu_allocator()  # as the trainer does
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2

    def config(cache: bool, workers: int):
        return load_config(ROOT / args.config, [
            f"model.name={args.model}", f"data.size={args.size}", "train.sampling=all",
            f"data.options.length.train={args.batches * 16}", f"data.options.cache={str(cache).lower()}",
            f"data.num_workers={workers}", "train.batch_size=16"])

    cfg = config(False, 0)
    tasks = list(cfg.data.tasks)
    torch.manual_seed(0)
    cl = cfg.train.channels_last  # the config's memory format, as the trainer runs it
    model = build_model(cfg.model, task_channels_for(tasks, cfg.data.name)).to(device).train()
    if cl:
        model = model.to(memory_format=torch.channels_last)
    opt = build_optimizer(cfg.optim, model)
    crit = MultiTaskLoss(tasks, cfg.loss.options)
    weights = {t: float(cfg.loss.weights.get(t, 1.0)) for t in tasks}

    def step(batch: dict) -> None:
        batch = to_device(batch, device, cl)
        preds = model(batch["image"], tasks=tasks)
        losses = crit({t: p.float() for t, p in preds.items()}, {t: batch[t] for t in tasks})
        opt.zero_grad(set_to_none=True)
        sum(weights[t] * v for t, v in losses.items()).backward()
        opt.step()

    def epoch(ds, sampler, loader, e: int) -> float:
        """One epoch as Trainer._train_epoch runs it (set_epoch, seeded augmentation)."""
        sampler.set_epoch(_mix(e, 0), 0)
        ds.epoch = _mix(e, 0)
        t = time.perf_counter()
        for batch in loader:
            step(batch)
        return time.perf_counter() - t

    ds, sampler, loader = build_data(cfg, cfg.data.train_split, True)
    sampler.set_epoch(_mix(0, 0), 0)
    ds.epoch = _mix(0, 0)
    held = list(loader)  # the same batches, generated once

    def pregenerated() -> float:
        t = time.perf_counter()
        for b in held:
            step(b)
        return time.perf_counter() - t

    pregenerated()  # warm-up
    rows = []
    print(f"{args.model}, {args.size}px, {len(held)} batches of 16, {torch.get_num_threads()} threads, device {device}, "
          f"channels_last={cl}")
    print(f"{'data':<26}{'epoch s':>9}{'pregen s':>10}{'ratio':>8}")
    for cache in (False, True):
        for workers in (0, 1):
            ds, sampler, loader = build_data(config(cache, workers), cfg.data.train_split, True)
            cold = epoch(ds, sampler, loader, 0)
            loaded, pre = [], []
            for r in range(args.repeats):  # interleaved: the CPU is shared
                loaded.append(epoch(ds, sampler, loader, r + 1) if cache else (cold if r == 0 else epoch(ds, sampler, loader, r + 1)))
                pre.append(pregenerated())
            row = {"cache": cache, "num_workers": workers, "epoch_s": statistics.median(loaded),
                   "first_epoch_s": cold, "pregenerated_s": statistics.median(pre)}
            row["ratio"] = row["epoch_s"] / row["pregenerated_s"]
            rows.append(row)
            name = f"cache={'on' if cache else 'off'} workers={workers}"
            print(f"{name:<26}{row['epoch_s']:>9.2f}{row['pregenerated_s']:>10.2f}{row['ratio']:>8.3f}", flush=True)
    best = min(r["ratio"] for r in rows)
    print(f"target <= 1.10: best {best:.3f} ({'met' if best <= 1.10 else 'NOT met'})")
    if args.json:
        Path(args.json).write_text(json.dumps({"size": args.size, "batches": len(held), "model": args.model, "channels_last": cl,
                                               "threads": torch.get_num_threads(), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
