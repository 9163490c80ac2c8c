"""python -m train.add_task RUN_DIR --task NAME --out NEW_RUN [--epochs N] [--lr LR] [--reference RUN_DIR] [--resume]

Adds a task to a trained Task Switching Network without touching what it
already knows. The new task gets a code v_t (drawn orthogonal to the old
codes, then learned); the encoder, the embedding network, the decoder and
the old codes stay frozen bit for bit. The release's output head averages
the shared 21-channel output down to the task's channels and has no
parameters, so the new task trains only its d numbers (and any parameter
a head adds for it: the parameters the grown model has and the old one had
not are the only ones that train).

It is the ordinary trainer (``tsn.engine.trainer.Trainer``) given the grown
model with every old parameter frozen, ``train_tasks=[TASK]`` and two hooks:
:class:`FrozenStatistics` keeps the network in eval mode while it trains
(the encoder's BatchNorm statistics are part of the frozen network) and
:class:`Invariance` checks, after the best code is loaded, what adding the
task guarantees (``TaskSwitchingNet.add_task``):

- every old weight is unchanged (``shared_weights_identical``);
- every old task decoded alone, ``model(x, task=t)``, gives bit-identical
  outputs on validation images (``old_tasks_identical``);
- the stacked pass over all tasks, ``model(x, tasks=all)``, decodes one more
  task per image, so kernels may sum in another order: its old-task outputs
  agree with the old stacked pass to ``STACKED_ATOL`` + ``STACKED_RTOL``
  * |value| (``stacked_within_tolerance``, ``stacked_max_abs_diff``);
- ``old_metrics_unchanged``: each old task's metric in the new run's final
  validation is within ``METRIC_ATOL`` of the base run's ``metrics.json``
  (null without one). The final validation decodes stacked, so the metrics
  inherit the float-rounding difference above; the tolerance says so.

The run's config says what was used: Adam at --lr without weight decay or
schedule, ``eval.select_metric`` = the new task's headline metric (or
delta_m when ``eval.single_task`` has every task). NEW_RUN holds
``config.yaml`` (data.tasks extended), ``checkpoints/{best,last}.pt`` and
``metrics.json`` with every task evaluated, so ``python -m eval NEW_RUN``
works. With ``--reference RUN_DIR`` (a run that trained the task from
scratch, e.g. the single-task run) the new task is compared with it.
``--resume`` (same arguments) continues an interrupted NEW_RUN from its
``last.pt``: the grown model is rebuilt from RUN_DIR, then the trainer's
ordinary resume restores the code, the optimizer and the position.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
from pathlib import Path

import torch

from tsn.engine.hooks import HookBase
from tsn.errors import ConfigError, TSNError

STACKED_ATOL = 1e-5  # stacked old-task outputs before vs after, absolute ...
STACKED_RTOL = 1e-5  # ... plus relative; the measured difference is about 1e-6 (float32 sums reordered)
METRIC_ATOL = 1e-3   # old tasks' metrics (percent, degrees) vs the base run's metrics.json


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m train.add_task", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="trained TSN run directory (or checkpoint)")
    p.add_argument("--task", required=True, help="the task to add (one the dataset has and the model lacks)")
    p.add_argument("--out", required=True, help="new run directory")
    p.add_argument("--epochs", type=int, default=None, help="passes over the new task's data (default: the run's train.epochs)")
    p.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate of the code (default 1e-2)")
    p.add_argument("--batch-size", type=int, default=None, help="default: the run's train.batch_size")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the initial code and the data order (default: the base run's train.seed)")
    p.add_argument("--reference", help="run that trained the task from scratch, for the comparison")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a key of the run's config (e.g. data.root=...)")
    p.add_argument("--device", default="auto")
    p.add_argument("--resume", action="store_true", help="continue an interrupted NEW_RUN (same arguments)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    return p.parse_args(argv)



class FrozenStatistics(HookBase):
    """The trainer puts the network in train mode each epoch; here every step runs
    in eval mode, so BatchNorm running statistics (part of the frozen network) stay."""

    def before_step(self, batch: dict, tasks: list[str]) -> None:
        self.trainer.model.eval()


class Invariance(HookBase):
    """Checks, after training (best code loaded), that the old network is untouched;
    adds the findings and ``record`` to the result (so to metrics.json)."""

    def __init__(self, probe: list[torch.Tensor], old: list[str], base_metrics: dict | None, record: dict,
                 codes_file: Path | None = None) -> None:
        self.probe, self.old, self.base_metrics, self.record, self.codes_file = probe, old, base_metrics, record, codes_file
        self.state: dict[str, torch.Tensor] = {}
        self.alone: list[dict[str, torch.Tensor]] = []
        self.stacked: list[dict[str, torch.Tensor]] = []

    def snapshot(self, model) -> None:
        """Record the old model (call before it grows)."""
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.alone, self.stacked = self._outputs(model, self.old)

    @torch.no_grad()
    def _outputs(self, model, stacked_tasks: list[str]):
        model.eval()
        alone = [{t: model(x, task=t).clone() for t in self.old} for x in self.probe]
        stacked = [{t: y.clone() for t, y in model(x, tasks=stacked_tasks).items() if t in self.old} for x in self.probe]
        return alone, stacked

    def after_train(self, result: dict) -> None:
        model = self.trainer.model
        after = model.state_dict()
        changed = [k for k, v in self.state.items() if not torch.equal(v, after[k])]
        shared = not changed
        alone, stacked = self._outputs(model, self.trainer.tasks)
        identical = all(torch.equal(a[t], b[t]) for a, b in zip(self.alone, alone) for t in self.old)
        diffs = [float((a[t] - b[t]).abs().max()) for a, b in zip(self.stacked, stacked) for t in self.old]
        close = all(torch.allclose(a[t], b[t], atol=STACKED_ATOL, rtol=STACKED_RTOL)
                    for a, b in zip(self.stacked, stacked) for t in self.old)
        if not shared:
            raise TSNError(f"old weights changed while adding the task ({', '.join(changed[:3])}"
                           f"{', ...' if len(changed) > 3 else ''}); this is a bug")
        if not identical:
            raise TSNError("an old task's output, decoded alone, changed while adding the task; this is a bug")
        unchanged = None
        if self.base_metrics is not None:
            unchanged = all(_close(v, self.base_metrics[t].get(k)) for t in self.old if t in self.base_metrics
                            for k, v in result["val"][t].items())
        if self.codes_file is not None:  # the saved config reads the codes from this file
            from tsn.io import atomic_torch_save

            self.trainer.write(self.codes_file, atomic_torch_save, model.codes.table().detach().cpu())
        result.update({
            "added_task": self.record, "old_tasks_identical": identical, "shared_weights_identical": shared,
            "stacked_within_tolerance": close, "stacked_max_abs_diff": max(diffs, default=0.0),
            "stacked_tolerance": {"atol": STACKED_ATOL, "rtol": STACKED_RTOL},
            "old_metrics_unchanged": unchanged, "old_metrics_tolerance": METRIC_ATOL,
        })


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return abs(a - b) <= METRIC_ATOL


def add_task(run: str | Path, task: str, out: str | Path, epochs: int | None = None, lr: float = 1e-2,
             batch_size: int | None = None, seed: int | None = None, reference: str | Path | None = None,
             overrides: list[str] | None = None, device: str = "auto", log=print, resume: bool = False) -> dict:
    """Add ``task`` to the TSN in ``run``, train its code, write the run in ``out``; returns metrics.json."""
    from tsn.data import dataset_info
    from tsn.engine.evaluate import to_device
    from tsn.engine.factory import build_data, load_reference
    from tsn.engine.trainer import Trainer
    from tsn.models.registry import model_options, task_channels_for
    from tsn.models.tsn import TaskSwitchingNet
    from tsn.nn.ops import set_fast_kernels
    from tsn.runs import load_run_checkpoint
    from tsn.tasks import get_task

    out = Path(out)
    if (out / "metrics.json").exists():
        raise ConfigError(f"{out} already holds a finished run; choose another --out")
    if (out / "checkpoints").exists() and not resume:
        raise ConfigError(f"{out} holds an interrupted run; --resume (same arguments) continues it, "
                          "or choose another --out")
    cfg, model, ckpt = load_run_checkpoint(run, device, overrides)
    if not isinstance(model, TaskSwitchingNet):
        raise ConfigError(f"only a TSN can take a new task by its code; {run} holds a {cfg.model.name} model")
    old = list(model.tasks)
    get_task(task)
    if task in old:
        raise ConfigError(f"the model already has {task!r}; it has {', '.join(old)}")
    info = dataset_info(cfg.data.name)
    if task not in info.tasks:
        raise ConfigError(f"dataset {cfg.data.name!r} has no {task!r}; it has {', '.join(info.tasks)}")
    epochs = epochs if epochs is not None else cfg.train.epochs
    # a base trained with seed k is compared with runs of seed k, so its added task is too
    seed = cfg.train.seed if seed is None else seed
    if epochs < 1 or not lr > 0:
        raise ConfigError("--epochs must be at least 1 and --lr positive")
    dev = next(model.parameters()).device
    comparison = None
    if reference:
        rfile = Path(reference) / "metrics.json" if Path(reference).is_dir() else Path(reference)
        if not rfile.is_file():
            raise ConfigError(f"--reference: no metrics.json at {rfile}")
        rdata = json.loads(rfile.read_text())
        if task not in rdata.get("val", {}):
            raise ConfigError(f"--reference {reference} has no {task} results")
        comparison = {"run": str(rfile.parent), "model": rdata.get("model"), "metrics": rdata["val"][task],
                      "params": rdata.get("params")}

    # the new run's config: what this command really uses
    new = copy.deepcopy(cfg)
    new.data.tasks = old + [task]
    new.name = f"{cfg.name}+{task}"
    new.train.seed, new.train.epochs, new.train.sampling, new.train.device = seed, epochs, "all", str(dev)
    new.train.tag_every, new.train.checkpoint_every, new.train.eval_at_start = 0, 0, False
    if batch_size:
        new.train.batch_size = batch_size
    new.optim.name, new.optim.lr, new.optim.encoder_lr, new.optim.weight_decay = "adam", lr, None, 0.0
    new.optim.schedule, new.optim.warmup_epochs, new.optim.clip_grad = "none", 0, None
    new.loss.weighting, new.loss.weighting_options = "fixed", {}
    single = load_reference(cfg.eval.single_task) if cfg.eval.single_task else None
    if single is None or not all(t in single for t in new.data.tasks):
        new.eval.single_task = None  # delta_m needs every task; select on the new task's headline instead
        new.eval.select_metric = f"{task}/{get_task(task).headline}"
    codes_file = None
    if model_options(new.model, "tsn")["code"].kind == "file":  # the config must rebuild this model: its codes from a file
        codes_file = (out / "codes.pt").resolve()
        new.model.options.setdefault("tsn", {}).setdefault("code", {})["path"] = str(codes_file)

    _, _, val = build_data(new, cfg.data.val_split, train=False)
    probe = [to_device(b, dev)["image"] for _, b in zip(range(2), val)]
    base_metrics = _base_metrics(run)
    channels = task_channels_for([task], cfg.data.name)[task]
    record = {"name": task, "channels": channels, "epochs": epochs, "lr": lr, "seed": seed, "trained_params": 0,
              "base_run": str(Path(run)), "base_checkpoint": str(ckpt["path"]), "reference": comparison}
    # the old outputs are recorded with the kernels and memory format the trainer will use,
    # so that "bit-identical" compares like with like
    set_fast_kernels(new.train.fast_kernels)
    if new.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    invariance = Invariance(probe, old, base_metrics, record, codes_file)
    invariance.snapshot(model)

    model.add_task(task, channels, learnable=True, seed=seed)
    for name, p in model.named_parameters():  # only what the grown model has and the old one had not trains
        p.requires_grad_(name not in invariance.state)
    trained = [p for p in model.parameters() if p.requires_grad]
    record["trained_params"] = sum(p.numel() for p in trained)
    if not trained:
        raise ConfigError(f"the code of {task!r} is not learnable")
    trainer = Trainer(new, out, resume=resume, quiet=True, model=model, train_tasks=[task],
                      hooks=[FrozenStatistics(), invariance])
    log(f"adding {task} ({channels} channels) to {cfg.name} ({', '.join(old)}): training {record['trained_params']} numbers "
        f"(its code) for {epochs} epoch(s), {len(trainer.train_ds)} samples, lr {lr}; every other weight frozen")
    result = trainer.fit()
    for h in result["history"]:
        head = get_task(task).headline
        log(f"epoch {h['epoch']}: val {task} {head} {h['val'][task][head]:.2f}"
            + (" (best)" if h["epoch"] == result["best_epoch"] else ""))
    return result


def _base_metrics(run: str | Path) -> dict | None:
    p = Path(run)
    p = p / "metrics.json" if p.is_dir() else p.parent.parent / "metrics.json"
    return json.loads(p.read_text()).get("val") if p.is_file() else None


def summary(result: dict) -> str:
    """The printed check says exactly what metrics.json records (same keys, same tolerances)."""
    from tsn.tasks import get_task

    info = result["added_task"]
    t = info["name"]
    h = get_task(t).headline
    tol = result["stacked_tolerance"]
    lines = [f"{result['name']}: {t} added by training {info['trained_params']} numbers (its code), "
             f"{info['epochs']} epoch(s), {result['train_time_s']:.0f}s",
             f"old tasks decoded alone, model(x, task=t), bit-identical: {result['old_tasks_identical']}; "
             f"shared weights unchanged: {result['shared_weights_identical']}",
             f"old tasks in the stacked pass with {t}, within atol {tol['atol']:g} + rtol {tol['rtol']:g}: "
             f"{result['stacked_within_tolerance']} (max difference {result['stacked_max_abs_diff']:.1e})"]
    if result["old_metrics_unchanged"] is not None:
        lines.append(f"old tasks' metrics within {result['old_metrics_tolerance']:g} of the base run's metrics.json: "
                     f"{result['old_metrics_unchanged']}")
    lines.append(f"{t} {h}: {result['val'][t][h]:.2f} with the added code")
    ref = info.get("reference")
    if ref:
        lines[-1] += f", {ref['metrics'][h]:.2f} trained from scratch ({ref['model']}, {ref['run']})"
    if result.get("delta_m") is not None:
        lines.append(f"delta_m over all {len(result['tasks'])} tasks: {result['delta_m']:+.2f}%")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = add_task(args.run, args.task, args.out, args.epochs, args.lr, args.batch_size, args.seed,
                          args.reference, args.set, args.device,
                          log=(lambda m: None) if args.json else (lambda m: print(m, flush=True)), resume=args.resume)
    except TSNError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "history"}))
    else:
        print(summary(result))
        print(f"run directory: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
