"""The training loop.

One run directory holds ``config.yaml`` (the resolved config),
``checkpoints/{last,best}.pt``, TensorBoard events (``tb/``), ``log.txt`` and
``metrics.json``. The epoch is a list of *segments*, each one pass over the
training loader with a rule for which tasks each step trains:

- ``paper``: the task order is shuffled every epoch and each task's pass runs
  in turn, one optimizer step per single-task batch (the release);
- ``all``: one pass, every step trains all tasks on the same batch with the
  stacked decoder and the weighting combines their losses;
- ``random``: one pass, each step trains one task drawn at random.

Data order, augmentation and task draws are functions of (seed, epoch,
segment, batch), so a run resumed from a mid-epoch checkpoint continues
exactly as if it had not stopped.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from tsn.config import Config, to_dict, to_yaml
from tsn.data import build_dataset, collate, dataset_info
from tsn.engine.checkpoint import load_checkpoint, load_model_state, rng_state, save_checkpoint, set_rng_state
from tsn.engine.distributed import DistInfo, all_reduce_mean, barrier, init_distributed
from tsn.engine.evaluate import EvalResult, autocast, evaluate, to_device
from tsn.engine.logger import RunLogger
from tsn.engine.optim import Schedule, build_optimizer
from tsn.engine.sampling import EpochSampler, SeededDataset, _mix
from tsn.errors import CheckpointError, ConfigError, TSNError
from tsn.grouping import AffinityAccumulator, tag_affinity_step
from tsn.io import atomic_write_json, atomic_write_text
from tsn.losses import MultiTaskLoss
from tsn.losses_aux import DeepSupervisionLoss
from tsn.metrics import MultiTaskMetrics, delta_m, higher_is_better
from tsn.models import build_model
from tsn.models.params import parameter_report
from tsn.models.registry import task_channels_for
from tsn.nn.ops import set_fast_kernels
from tsn.runtime import cpu_allocator_tuned, tune_cpu_allocator
from tsn.tasks import get_task
from tsn.weighting import build_weighting


class TrainingError(TSNError):
    """Training cannot go on (for example a non-finite loss)."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device is {name!r} but no CUDA device is available; use cpu or auto")
    return dev


def metric_options(cfg: Config, edge_thresholds: int | None = None) -> dict[str, Any]:
    """Each task's metric arguments from ``eval.options.<task>`` and the dataset's facts, for
    ``MultiTaskMetrics(tasks, **metric_options(cfg))``. A truthy second argument (callers pass
    ``cfg.eval.val_edge_thresholds``) selects the tasks' coarser training-time validation
    options (edge: ``val_thresholds``)."""
    info = dataset_info(cfg.data.name)
    validation = bool(edge_thresholds)
    return {"options": {t: get_task(t).metric_kwargs(cfg.eval.options.get(t), info, validation) for t in cfg.data.tasks}}


def load_reference(path: str | None) -> dict[str, dict[str, float]] | None:
    """Single-task reference results: a run dir, or a metrics.json (its "val" entry)."""
    if not path:
        return None
    import json

    p = Path(path)
    if p.is_dir():
        p = p / "metrics.json"
    if not p.is_file():
        raise ConfigError(f"eval.single_task: no metrics.json at {p}")
    data = json.loads(p.read_text())
    return data.get("val", data)


def build_data(cfg: Config, split: str, train: bool, rank: int = 0, world: int = 1, batch_size: int | None = None):
    ds = build_dataset(
        cfg.data.name, root=cfg.data.root, split=split, tasks=list(cfg.data.tasks), size=cfg.data.size,
        augment=cfg.data.augment and train,
        label_drop=cfg.data.label_drop if train else 0.0, label_drop_seed=cfg.data.label_drop_seed,
        **cfg.data.options,
    )
    if train:
        ds = SeededDataset(ds, cfg.train.seed)
    bs = batch_size or (cfg.train.batch_size if train else cfg.eval.batch_size)
    sampler = EpochSampler(len(ds), cfg.train.seed, shuffle=train, rank=rank, world=world, drop_last=train, batch_size=bs)
    if train and sampler.num_batches() == 0:
        raise ConfigError(f"the {split} split has {len(ds)} samples, fewer than one batch of {bs} per process")
    loader = DataLoader(ds, batch_size=bs, sampler=sampler, collate_fn=collate, num_workers=cfg.data.num_workers,
                        pin_memory=torch.cuda.is_available(), drop_last=False)
    return ds, sampler, loader


class Trainer:
    def __init__(self, cfg: Config, out_dir: str | Path | None, resume: bool = False, quiet: bool | None = None) -> None:
        self.cfg = cfg
        self.out = Path(out_dir) if out_dir is not None else None
        self.device = resolve_device(cfg.train.device)
        if self.device.type == "cpu":
            tune_cpu_allocator()  # large activations stop being page-faulted in every step (tsn/runtime.py)
        self.dist: DistInfo = init_distributed(self.device.type)
        if self.device.type == "cuda" and self.dist.enabled:
            self.device = torch.device("cuda", self.dist.local_rank)
        self.log = RunLogger(self.out, main=self.dist.is_main, quiet=quiet)
        self.tasks = list(cfg.data.tasks)
        self.amp = cfg.train.amp if cfg.train.amp is not None else self.device.type == "cuda"
        torch.manual_seed(cfg.train.seed)
        if cfg.train.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        set_fast_kernels(cfg.train.fast_kernels)  # the explicit kernel choice (tsn/nn/ops.py), process-wide like the above

        self.train_ds, self.sampler, self.loader = build_data(cfg, cfg.data.train_split, True, self.dist.rank, self.dist.world_size)
        self.val_ds, _, self.val_loader = build_data(cfg, cfg.data.val_split, False, self.dist.rank, self.dist.world_size)

        self.model = build_model(cfg.model, task_channels_for(self.tasks, cfg.data.name)).to(self.device)
        if cfg.train.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.criterion = DeepSupervisionLoss(MultiTaskLoss(self.tasks, cfg.loss.options))
        self.loss_weights = {t: w for t, w in cfg.loss.weights.items() if t in self.tasks}
        self.weighting = build_weighting(cfg.loss.weighting, self.tasks, self.loss_weights, **cfg.loss.weighting_options).to(self.device)
        if self.weighting.requires_all_tasks and cfg.train.sampling != "all" and len(self.tasks) > 1:
            raise ConfigError(f"loss.weighting {cfg.loss.weighting!r} combines every task's gradient in one step; "
                              f"train.sampling {cfg.train.sampling!r} trains one task per step; use train.sampling=all")
        self.optimizer = build_optimizer(cfg.optim, self.model, self.weighting.param_groups(cfg.optim.weighting_lr))
        self.segments_per_epoch = len(self.tasks) if cfg.train.sampling == "paper" else 1
        self.schedule = Schedule(cfg.optim, self.optimizer, self.segments_per_epoch * self.sampler.num_batches(), cfg.train.epochs)
        self.net: nn.Module = self.model
        if self.dist.enabled:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True)
        if cfg.train.compile:
            self.net = torch.compile(self.net)
        self.reference = load_reference(cfg.eval.single_task)
        self.epoch, self.segment, self.batch_in_segment, self.step = 0, 0, 0, 0
        self.best: dict[str, Any] = {"score": None, "epoch": None}
        self.history: list[dict[str, Any]] = []
        self.epoch_losses: dict[str, list[float]] = {}
        self.elapsed = 0.0
        self.tag = AffinityAccumulator()  # TAG: inter-task affinities averaged over training
        if cfg.train.tag_every:
            self._check_tag()
        if resume:
            self._resume()

    # ------------------------------------------------------------------ state

    def _state(self) -> dict[str, Any]:
        return {
            "config": to_dict(self.cfg), "tasks": self.model.task_channels, "epoch": self.epoch, "segment": self.segment,
            "batch": self.batch_in_segment, "step": self.step, "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(), "weighting": self.weighting.state_dict(), "rng": rng_state(),
            "best": self.best, "history": self.history, "epoch_losses": self.epoch_losses, "elapsed": self.elapsed,
            **({"tag": self.tag.state_dict()} if self.cfg.train.tag_every else {}),
        }

    def save(self, name: str) -> None:
        if self.dist.is_main and self.out is not None:
            path = save_checkpoint(self.out / "checkpoints" / name, self.model, **self._state())
            # a small readable note of where the checkpoint stands (for people and for tests)
            atomic_write_json(path.with_suffix(".json"), {"epoch": self.epoch, "segment": self.segment,
                                                          "batch": self.batch_in_segment, "step": self.step})

    def _resume(self) -> None:
        if self.out is None:
            raise CheckpointError("--resume needs a run directory (--out)")
        path = self.out / "checkpoints" / "last.pt"
        if not path.is_file():
            raise CheckpointError(f"nothing to resume: {path} does not exist")
        ckpt = load_checkpoint(path)
        load_model_state(self.model, ckpt)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["schedule"])
        self.weighting.load_state_dict(ckpt["weighting"])
        set_rng_state(ckpt["rng"])
        self.epoch, self.segment, self.batch_in_segment, self.step = ckpt["epoch"], ckpt["segment"], ckpt["batch"], ckpt["step"]
        self.best, self.history, self.epoch_losses = ckpt["best"], ckpt["history"], ckpt["epoch_losses"]
        self.elapsed = ckpt.get("elapsed", 0.0)
        if "tag" in ckpt:
            self.tag.load_state_dict(ckpt["tag"])
        self.log.info(f"resumed from {path} at epoch {self.epoch + 1}, step {self.step}")

    # ------------------------------------------------------------------ plan

    def segment_tasks(self, epoch: int) -> list[list[str] | None]:
        """Tasks of each segment of ``epoch``; None = one random task per step."""
        s = self.cfg.train.sampling
        if s == "all":
            return [list(self.tasks)]
        if s == "random":
            return [None]
        g = torch.Generator().manual_seed(_mix(self.cfg.train.seed, epoch, 7))
        return [[self.tasks[i]] for i in torch.randperm(len(self.tasks), generator=g).tolist()]

    def step_tasks(self, seg_tasks: list[str] | None, epoch: int, segment: int, batch: int) -> list[str]:
        if seg_tasks is not None:
            return seg_tasks
        g = torch.Generator().manual_seed(_mix(self.cfg.train.seed, epoch, segment, batch, 11))
        return [self.tasks[int(torch.randint(len(self.tasks), (1,), generator=g))]]

    # ------------------------------------------------------------------ loop

    def fit(self) -> dict[str, Any]:
        cfg = self.cfg
        if self.dist.is_main and self.out is not None:
            atomic_write_text(self.out / "config.yaml", to_yaml(cfg))
        n_params = parameter_report(self.model)
        self.log.info(
            f"{cfg.model.name} on {cfg.data.name} ({', '.join(self.tasks)}): {n_params['params'] / 1e6:.2f}M parameters, "
            f"{len(self.train_ds)} train / {len(self.val_ds)} val samples, sampling={cfg.train.sampling}, "
            f"weighting={cfg.loss.weighting}, device={self.device}, processes={self.dist.world_size}, "
            f"fast_kernels={cfg.train.fast_kernels}"
            + (f", {torch.get_num_threads()} threads, channels_last={cfg.train.channels_last}, "
               f"allocator={'tuned' if cpu_allocator_tuned() else 'system'}" if self.device.type == "cpu" else ""))
        if cfg.train.eval_at_start and not self.history:
            self._validate(epoch=0)
        t_start = time.time() - self.elapsed
        while self.epoch < cfg.train.epochs:
            self._train_epoch()
            self.elapsed = time.time() - t_start
            done = self.epoch + 1
            if done % cfg.train.val_every == 0 or done == cfg.train.epochs:
                self._validate(epoch=done)
            self.weighting.epoch_end({t: sum(v) / len(v) for t, v in self.epoch_losses.items() if v})
            self.epoch, self.segment, self.batch_in_segment, self.epoch_losses = done, 0, 0, {}
            self.save("last.pt")
        self.elapsed = time.time() - t_start
        return self._finish(n_params)

    def _train_epoch(self) -> None:
        from tqdm import tqdm

        cfg, epoch = self.cfg, self.epoch
        segments = self.segment_tasks(epoch)
        self.net.train()
        nb = self.sampler.num_batches()
        bar = tqdm(total=len(segments) * nb, initial=self.segment * nb + self.batch_in_segment,
                   desc=f"epoch {epoch + 1}/{cfg.train.epochs}", leave=False, dynamic_ncols=True,
                   disable=not sys.stderr.isatty() or not self.dist.is_main)
        while self.segment < len(segments):
            seg = self.segment
            self.sampler.set_epoch(_mix(epoch, seg), self.batch_in_segment)
            self.train_ds.epoch = _mix(epoch, seg)
            for batch in self.loader:
                tasks = self.step_tasks(segments[seg], epoch, seg, self.batch_in_segment)
                losses, weights = self._train_step(batch, tasks)
                self.batch_in_segment += 1
                self.step += 1
                bar.update(1)
                if self.step % cfg.train.log_every == 0 or self.step == 1:
                    bar.set_postfix({t: f"{v:.3f}" for t, v in losses.items()})
                if cfg.train.checkpoint_every and self.step % cfg.train.checkpoint_every == 0:
                    self.save("last.pt")
            self.segment, self.batch_in_segment = seg + 1, 0
        bar.close()

    def _train_step(self, batch: dict, tasks: list[str]) -> tuple[dict[str, float], dict[str, float]]:
        cfg = self.cfg
        batch = to_device(batch, self.device, cfg.train.channels_last)
        if cfg.train.tag_every and self.step % cfg.train.tag_every == 0:
            self._tag_step(batch)
        with autocast(self.device, self.amp):
            preds = self.net(batch["image"], tasks=tasks)
        preds = {t: p.float() for t, p in preds.items()}
        losses = self.criterion(preds, {t: batch[t] for t in tasks if t in batch})
        if not bool(torch.isfinite(torch.stack([v.detach() for v in losses.values()])).all()):  # one sync per step
            t, v = next((t, v) for t, v in losses.items() if not torch.isfinite(v))
            last = self.out / "checkpoints" / "last.pt" if self.out else None
            raise TrainingError(
                f"non-finite {t} loss ({float(v.detach())}) at step {self.step + 1} (epoch {self.epoch + 1}); "
                f"stopped; last good checkpoint: {last if last and last.is_file() else 'none yet'}")
        self.optimizer.zero_grad(set_to_none=True)
        total, weights = self.weighting.backward(losses, self.model)
        if cfg.optim.clip_grad:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.clip_grad)
        self.optimizer.step()
        self.weighting.after_step()
        self.schedule.step_iter()
        values = {t: float(v.detach()) for t, v in losses.items()}
        for t, v in values.items():
            self.epoch_losses.setdefault(t, []).append(v)
        scalars = {f"train/loss_{t}": v for t, v in values.items()}
        scalars.update({f"train/weight_{t}": w for t, w in weights.items()})
        scalars["train/total"] = float(total.detach())
        if self.step % self.cfg.train.log_every == 0:
            scalars.update({f"lr/{g.get('name', i)}": g["lr"] for i, g in enumerate(self.optimizer.param_groups)})
        self.log.scalars(scalars, self.step + 1)
        return values, weights

    # ------------------------------------------------------------------ TAG (Fifty et al., NeurIPS 2021)

    def _check_tag(self) -> None:
        t = self.cfg.train
        if t.tag_every < 0:
            raise ConfigError(f"train.tag_every must be >= 0, got {t.tag_every}")
        if t.tag_lr is not None and not (math.isfinite(t.tag_lr) and t.tag_lr > 0):
            raise ConfigError(f"train.tag_lr must be a positive number or null, got {t.tag_lr}")
        if len(self.tasks) < 2 or not self.model.shared_parameters():
            raise ConfigError(f"train.tag_every needs >= 2 tasks and shared parameters; {self.cfg.model.name} "
                              f"with {len(self.tasks)} task(s) has none to measure affinities on")

    def _tag_step(self, batch: dict) -> None:
        """One look-ahead affinity measurement on this step's batch, before the step.

        Always over all tasks (also under paper/random sampling, where the
        step itself trains one task).  Losses are the criterion's times the
        static ``loss.weights`` (so task i's look-ahead step has the scale of
        its share of the training update; Z_{i->j} is a ratio, so j's weight
        cancels); learned weightings (uncertainty, dwa, gradnorm) are not
        applied.  Plain SGD step of ``train.tag_lr`` (default: the current
        decoder-group lr) on ``model.shared_parameters()``; the model stays in
        train mode (batch statistics, as in training) and every buffer (BN
        running statistics) and the RNG state are restored, so the run
        continues bit-identically.  Under DDP each process measures on its
        shard and the affinities are averaged.
        """
        cfg = self.cfg
        lr = cfg.train.tag_lr or next(g["lr"] for g in self.optimizer.param_groups if g.get("name") == "decoder")
        targets = {t: batch[t] for t in self.tasks if t in batch}
        static = self.weighting.static

        def losses() -> dict[str, Tensor]:
            with autocast(self.device, self.amp):
                preds = self.model(batch["image"], tasks=self.tasks)
            out = self.criterion({t: p.float() for t, p in preds.items()}, targets)
            return {t: static[t] * v for t, v in out.items()}

        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            z = tag_affinity_step(self.model.shared_parameters(), losses, lr, restore=list(self.model.buffers()))
        if self.dist.enabled:
            flat = all_reduce_mean({f"{i}\t{j}": v for (i, j), v in z.items()}, self.device)
            z = {tuple(k.split("\t")): v for k, v in flat.items()}
        self.tag.update(z)

    # ------------------------------------------------------------------ validation

    def score(self, results: dict[str, dict[str, float]], losses: dict[str, float]) -> tuple[float, str, bool]:
        """(value, name, higher_is_better) of the model-selection criterion:
        delta_m against single-task references; else ``eval.select_metric``;
        else the validation loss weighted as in training (every task counts)."""
        if self.reference is not None:
            return delta_m(results, self.reference), "delta_m", False
        sel = self.cfg.eval.select_metric
        if sel is None:
            return sum(self.weighting.static[t] * v for t, v in losses.items()), "weighted_val_loss", False
        task, metric = sel.split("/", 1)
        if task not in results or metric not in results[task]:
            raise ConfigError(f"eval.select_metric {sel!r}: no such metric; {task} has {', '.join(results.get(task, {}))}")
        return results[task][metric], sel, higher_is_better(task, metric)

    def run_validation(self, edge_thresholds: int | None = None, on_batch=None) -> EvalResult:
        metrics = MultiTaskMetrics(self.tasks, **metric_options(self.cfg, edge_thresholds))
        return evaluate(self.model, self.val_loader, self.tasks, metrics, self.device, self.criterion, self.amp,
                        self.cfg.train.channels_last, progress=sys.stderr.isatty() and self.dist.is_main, on_batch=on_batch)

    def _validate(self, epoch: int) -> None:
        images = _ImageSampler(self.cfg.train.images_every_val, self.tasks) if self.dist.is_main else None
        res = self.run_validation(self.cfg.eval.val_edge_thresholds, on_batch=images)
        if epoch > 0:  # the plateau schedule follows the mean validation loss, as in the release
            self.schedule.step_epoch(res.mean_loss)
        score, name, hib = self.score(res.metrics, res.losses)
        entry = {"epoch": epoch, "step": self.step, "val": res.metrics, "val_loss": res.losses,
                 name: score, "time_s": round(self.elapsed, 1)}
        if self.reference is not None:
            entry["delta_m"] = score
        self.history.append(entry)
        better = self.best["score"] is None or (score > self.best["score"] if hib else score < self.best["score"])
        flat = {f"val/{t}/{k}": v for t, m in res.metrics.items() for k, v in m.items() if not k.startswith(("IoU_", "iou_"))}
        flat.update({f"val/loss_{t}": v for t, v in res.losses.items()})
        flat[f"val/{name}"] = score
        self.log.scalars(flat, self.step)
        if images is not None:
            for tag, img in images.images.items():
                self.log.image(tag, img, self.step)
        summary = ", ".join(f"{t} {get_task(t).headline} {res.metrics[t].get(get_task(t).headline, float('nan')):.2f}" for t in self.tasks)
        self.log.info(f"epoch {epoch}: val {summary}; {name} {score:.3f}" + (" (best)" if better and epoch > 0 else ""))
        if better and epoch > 0:
            self.best = {"score": score, "epoch": epoch, "metric": name}
            self.save("best.pt")
        barrier()

    def _finish(self, n_params: dict) -> dict[str, Any]:
        """Final validation of the best model with the full protocol; metrics.json."""
        best_path = self.out / "checkpoints" / "best.pt" if self.out else None
        barrier()
        if best_path is not None and best_path.is_file():
            load_model_state(self.model, load_checkpoint(best_path))
        res = self.run_validation()
        result: dict[str, Any] = {
            "name": self.cfg.name, "model": self.cfg.model.name, "dataset": self.cfg.data.name, "tasks": self.tasks,
            "params": n_params["params"], "by_part": n_params["by_part"], "best_epoch": self.best["epoch"],
            "selected_by": self.best.get("metric"), "val": res.metrics, "val_loss": res.losses,
            "delta_m": delta_m(res.metrics, self.reference) if self.reference else None,
            "train_time_s": round(self.elapsed, 1), "steps": self.step, "processes": self.dist.world_size,
            "history": self.history,
        }
        if self.cfg.train.tag_every:  # TAG: mean Z_{i->j} over training, row i onto column j
            result["tag_affinity"] = self.tag.matrix(self.tasks)
            result["tag_measurements"] = max(self.tag.counts.values(), default=0)
        if self.dist.is_main and self.out is not None:
            atomic_write_json(self.out / "metrics.json", result)
        self.log.close()
        return result


class _ImageSampler:
    """Collects the first few validation predictions as coloured images for TensorBoard."""

    def __init__(self, limit: int, tasks: list[str]) -> None:
        self.limit, self.tasks, self.images, self.seen = limit, tasks, {}, 0

    def __call__(self, batch: dict, preds: dict[str, Tensor]) -> None:
        if self.seen >= self.limit:
            return
        from tsn.engine.visuals import prediction_panel

        for i in range(min(batch["image"].shape[0], self.limit - self.seen)):
            self.images[f"val_images/{self.seen}"] = prediction_panel(batch, preds, i, self.tasks)
            self.seen += 1


__all__ = ["Trainer", "TrainingError", "build_data", "metric_options"]
