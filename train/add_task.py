"""python -m train.add_task RUN_DIR --task NAME --out NEW_RUN [--epochs N] [--lr LR] [--reference RUN_DIR]

Adds a task to a trained Task Switching Network without touching what it
already knows. The new task gets a code v_t (drawn orthogonal to the old
codes, then learned); the encoder, the embedding network, the decoder and
the old codes stay frozen bit for bit. The release's output head averages
the shared 21-channel output down to the task's channels and has no
parameters, so the new task trains only its d numbers. Because nothing
shared moves, the old tasks' outputs are bit-identical before and after;
this command checks it and records ``old_tasks_identical`` in the new run's
``metrics.json``.

Training runs in eval mode (the encoder's BatchNorm statistics are part of
the frozen network; AdaIN has no running statistics), Adam on the new code,
the new task's loss only, for --epochs passes over its training data; the
code with the best validation headline metric is kept. NEW_RUN holds
``config.yaml`` (data.tasks extended), ``checkpoints/{best,last}.pt`` and
``metrics.json`` with every task evaluated, so ``python -m eval NEW_RUN``
works. With ``--reference RUN_DIR`` (a run that trained the task from
scratch, e.g. the single-task run) the new task is compared with it.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch

from tsn.errors import ConfigError, TSNError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m train.add_task", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="trained TSN run directory (or checkpoint)")
    p.add_argument("--task", required=True, help="the task to add (one the dataset has and the model lacks)")
    p.add_argument("--out", required=True, help="new run directory")
    p.add_argument("--epochs", type=int, default=None, help="passes over the new task's data (default: the run's train.epochs)")
    p.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate of the code (default 1e-2)")
    p.add_argument("--batch-size", type=int, default=None, help="default: the run's train.batch_size")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial code and the data order")
    p.add_argument("--reference", help="run that trained the task from scratch, for the comparison")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a key of the run's config (e.g. data.root=...)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    return p.parse_args(argv)


def freeze_for_new_task(model, task: str) -> list[torch.nn.Parameter]:
    """Freeze every parameter but the new task's code; return the trainable ones."""
    for p in model.parameters():
        p.requires_grad_(False)
    code = model.codes.code(task)
    if not isinstance(code, torch.nn.Parameter):
        raise ConfigError(f"the code of {task!r} is not learnable")
    code.requires_grad_(True)
    return [code]


@torch.no_grad()
def snapshot(model, images: list[torch.Tensor], tasks: list[str]) -> list[dict[str, torch.Tensor]]:
    model.eval()
    return [{t: y.detach().clone() for t, y in model(x, tasks=tasks).items()} for x in images]


def add_task(run: str | Path, task: str, out: str | Path, epochs: int | None = None, lr: float = 1e-2,
             batch_size: int | None = None, seed: int = 0, reference: str | Path | None = None,
             overrides: list[str] | None = None, device: str = "auto", log=print) -> dict:
    """Add ``task`` to the TSN in ``run``, train its code, write the run in ``out``; returns metrics.json."""
    from eval.run import load_run
    from tsn.config import to_dict, to_yaml
    from tsn.data import dataset_info
    from tsn.engine.checkpoint import save_checkpoint
    from tsn.engine.evaluate import evaluate, to_device
    from tsn.engine.trainer import build_data, load_reference, metric_options
    from tsn.io import atomic_write_json, atomic_write_text, atomic_torch_save
    from tsn.losses import MultiTaskLoss
    from tsn.metrics import MultiTaskMetrics, delta_m, higher_is_better
    from tsn.models.params import parameter_report
    from tsn.models.registry import task_channels_for
    from tsn.models.tsn import TaskSwitchingNet
    from tsn.tasks import get_task

    out = Path(out)
    if (out / "metrics.json").exists() or (out / "checkpoints").exists():
        raise ConfigError(f"{out} already holds a run; choose another --out")
    cfg, model, ckpt = load_run(run, overrides, device)
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
    if epochs < 1 or lr <= 0:
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

    # what must not change: shared weights, old codes, old outputs on some validation images
    cfg_new = copy.deepcopy(cfg)
    cfg_new.data.tasks = old + [task]
    cfg_new.name = f"{cfg.name}+{task}"
    cfg_new.train.seed = seed
    if batch_size:
        cfg_new.train.batch_size = batch_size
    cfg_task = copy.deepcopy(cfg_new)
    cfg_task.data.tasks = [task]
    _, _, val_all = build_data(cfg_new, cfg.data.val_split, train=False)
    probe = [to_device(b, dev)["image"] for _, b in zip(range(2), val_all)]
    before_out = snapshot(model, probe, old)
    before_state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    channels = task_channels_for([task], cfg.data.name)[task]
    model.add_task(task, channels, learnable=True, seed=seed)
    model.to(dev)
    params = freeze_for_new_task(model, task)
    optim = torch.optim.Adam(params, lr=lr)
    criterion = MultiTaskLoss([task], cfg.loss.options)
    train_ds, sampler, loader = build_data(cfg_task, cfg.data.train_split, train=True)
    _, _, val_task = build_data(cfg_task, cfg.data.val_split, train=False)
    head = get_task(task).headline
    hib = higher_is_better(task, head)
    log(f"adding {task} ({channels} channels) to {cfg.name} ({', '.join(old)}): training its {params[0].numel()}-dim code "
        f"for {epochs} epoch(s), {len(train_ds)} samples, lr {lr}; every other weight frozen")

    def validate() -> float:
        m = MultiTaskMetrics([task], **metric_options(cfg_task, cfg.eval.val_edge_thresholds))
        return evaluate(model, val_task, [task], m, dev).metrics[task][head]

    history, best, best_code, best_epoch, t0, step = [], None, None, 0, time.time(), 0
    for epoch in range(epochs):
        model.eval()  # frozen BN statistics; only the code learns
        sampler.set_epoch(epoch)
        train_ds.epoch = epoch
        losses = []
        for batch in loader:
            batch = to_device(batch, dev)
            pred = model(batch["image"], tasks=[task])
            loss = criterion({task: pred[task].float()}, {task: batch[task]})[task]
            if not torch.isfinite(loss):
                raise TSNError(f"non-finite {task} loss at step {step + 1}; try a smaller --lr")
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            losses.append(float(loss.detach()))
            step += 1
        score = validate()
        history.append({"epoch": epoch + 1, "step": step, "train_loss": sum(losses) / max(1, len(losses)),
                        "val": {task: {head: score}}})
        if best is None or (score > best if hib else score < best):
            best, best_code, best_epoch = score, params[0].detach().clone(), epoch + 1
        log(f"epoch {epoch + 1}/{epochs}: loss {history[-1]['train_loss']:.4f}, val {task} {head} {score:.2f}"
            + (" (best)" if best_epoch == epoch + 1 else ""))
    train_time = time.time() - t0
    last_code = params[0].detach().clone()
    with torch.no_grad():
        params[0].copy_(best_code)
    for p in model.parameters():
        p.requires_grad_(False)

    _settle_code(model.codes, task, cfg.model.code.learnable)
    after_state = model.state_dict()
    shared_identical = all(torch.equal(before_state[k], after_state[k]) for k in before_state)
    old_identical = all(torch.equal(a[t], b[t]) for a, b in zip(before_out, snapshot(model, probe, old)) for t in old)
    if not (shared_identical and old_identical):
        raise TSNError("a shared weight or an old task's output changed while adding the task; this is a bug")

    # the saved config must rebuild this model: codes from a file if the config's kind cannot grow by one task
    if cfg_new.model.code.kind == "file":
        cfg_new.model.code.path = str(atomic_torch_save(out / "codes.pt", model.codes.table().detach().cpu()).resolve())
    state = {"config": to_dict(cfg_new), "tasks": dict(model.task_channels), "epoch": epochs, "step": step,
             "added_task": task, "base_run": str(ckpt["path"])}
    save_checkpoint(out / "checkpoints" / "best.pt", model, **state)
    code = model.codes.code(task)
    with torch.no_grad():
        code.copy_(last_code)
        save_checkpoint(out / "checkpoints" / "last.pt", model, **state)
        code.copy_(best_code)
    atomic_write_text(out / "config.yaml", to_yaml(cfg_new))

    res = evaluate(model, val_all, cfg_new.data.tasks, MultiTaskMetrics(cfg_new.data.tasks, **metric_options(cfg_new)), dev)
    base_metrics = _base_metrics(run)
    ref_single = load_reference(cfg.eval.single_task) if cfg.eval.single_task else None
    report = parameter_report(model)
    result = {
        "name": cfg_new.name, "model": cfg_new.model.name, "dataset": cfg_new.data.name, "tasks": cfg_new.data.tasks,
        "params": report["params"], "by_part": report["by_part"], "best_epoch": best_epoch,
        "val": res.metrics, "val_loss": res.losses,
        "delta_m": delta_m(res.metrics, ref_single) if ref_single and all(t in ref_single for t in res.metrics) else None,
        "train_time_s": round(train_time, 1), "steps": step, "history": history,
        "added_task": {"name": task, "channels": channels, "epochs": epochs, "lr": lr, "seed": seed,
                       "trained_params": params[0].numel(), "base_run": str(Path(run)), "reference": comparison},
        "old_tasks_identical": old_identical, "shared_weights_identical": shared_identical,
        "old_metrics_unchanged": None if base_metrics is None else
        all(json.dumps(res.metrics[t], sort_keys=True) == json.dumps(base_metrics[t], sort_keys=True) for t in old if t in base_metrics),
    }
    atomic_write_json(out / "metrics.json", result)
    return result


def _settle_code(codes, task: str, learnable: bool) -> None:
    """Make the learned code a buffer again when the run's codes are buffers, so the
    state dict lists it where a model built from the saved config has it (the
    checkpoint fingerprint hashes names in order)."""
    if learnable:
        return
    value = codes._parameters.pop(f"code_{task}").detach().clone()
    codes.register_buffer(f"code_{task}", value)


def _base_metrics(run: str | Path) -> dict | None:
    p = Path(run)
    p = p / "metrics.json" if p.is_dir() else p.parent.parent / "metrics.json"
    return json.loads(p.read_text()).get("val") if p.is_file() else None


def summary(result: dict) -> str:
    from tsn.tasks import get_task

    info = result["added_task"]
    t = info["name"]
    h = get_task(t).headline
    lines = [f"{result['name']}: {t} added by training {info['trained_params']} numbers (its code), "
             f"{info['epochs']} epoch(s), {result['train_time_s']:.0f}s",
             f"old tasks' outputs bit-identical: {result['old_tasks_identical']}; shared weights unchanged: "
             f"{result['shared_weights_identical']}",
             f"{t} {h}: {result['val'][t][h]:.2f} with the added code"]
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
                          log=(lambda m: None) if args.json else (lambda m: print(m, flush=True)))
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
