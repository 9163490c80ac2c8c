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

What reacts to steps and validations (TAG, model selection and ``best.pt``,
periodic ``last.pt``, TensorBoard images, ``metrics.json``) is a hook
(``tsn/engine/hooks.py``); checkpointed state is declared once with
:meth:`Trainer.register_checkpointable`.

Reliability: SIGINT/SIGTERM set a flag, and at the next step boundary the
trainer writes ``last.pt`` (with the position inside the epoch) and raises
:class:`Interrupted`, so ``--resume`` continues bit-identically. A resume
applies only the config changes in :data:`RESUME_SAFE` (and ``train.epochs``
where the schedule does not depend on it), logs each, and refuses every
other change in one line. A failed write is one line naming the path;
checkpoints are atomic, so the previous ``last.pt`` stays loadable, and
leftover ``checkpoints/.*.tmp`` files of a killed run are removed on start.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tsn.config import Config, to_dict, to_yaml
from tsn.engine.checkpoint import load_checkpoint, load_model_state, rng_state, save_checkpoint, set_rng_state
from tsn.engine.distributed import DistInfo, all_reduce_mean, barrier, init_distributed
from tsn.engine.evaluate import EvalResult, autocast, evaluate, to_device
from tsn.engine.factory import build_criterion, build_data, build_metrics, load_reference, metric_options, resolve_device
from tsn.engine.hooks import AttrState, BestCheckpoint, HookBase, MetricsHook, PeriodicCheckpoint, TagAffinity, TensorBoardImages
from tsn.engine.logger import RunLogger
from tsn.engine.optim import Schedule, build_optimizer
from tsn.engine.progress import ProgressRecords, wants_records
from tsn.engine.sampling import _mix
from tsn.env import run_environment
from tsn.errors import CheckpointError, ConfigError, TSNError
from tsn.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from tsn.metrics import delta_m, higher_is_better
from tsn.models import build_model
from tsn.nn.ops import set_fast_kernels
from tsn.models.params import parameter_report
from tsn.models.registry import task_channels_for
from tsn.runtime import cpu_allocator_tuned, tune_cpu_allocator
from tsn.tasks import get_task
from tsn.weighting import build_weighting


class TrainingError(TSNError):
    """Training cannot go on (for example a non-finite loss)."""


class RunWriteError(TSNError):
    """A file of the run could not be written (read-only folder, full disk)."""


class Interrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM: ``last.pt`` was written at a step boundary (``path``), so the run can resume."""

    def __init__(self, signum: int, path: Path | None) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum, self.path = signum, path


# Config keys a resume may change: where data lives, how fast it loads, on which device, how
# often things are logged or checkpointed, and evaluation-only settings; none changes the
# numbers the optimizer sees. train.epochs is decided by resume_changes (the schedule).
RESUME_SAFE = (
    "name", "data.root", "data.num_workers", "train.device", "train.log_every", "train.checkpoint_every",
    "train.images_every_val", "train.val_every", "eval.batch_size", "eval.options",
)


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):  # an empty mapping has no leaves: {} -> {edge: 2} is the one change loss.weights.edge
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def resume_changes(saved: dict, cfg: Config, completed_epochs: int) -> list[str]:
    """What a resume changes against the checkpoint's config, as lines to log.

    Raises one ConfigError naming every refused key: a changed learning rate,
    loss weight or data option would be written to config.yaml while the
    saved optimizer, schedule and data order kept the old ones. ``train.epochs``
    may change under schedules that do not depend on the run's length (none,
    plateau), to no fewer than the epochs already trained; cosine and poly
    would jump to another point of the curve.
    """
    try:  # the saved config read as today's parser reads it (defaults of keys added since, migrations)
        from tsn.config import load_config

        saved = to_dict(load_config(data=saved))
    except TSNError:
        pass
    old, new = _flatten(saved), _flatten(to_dict(cfg))
    changed = [k for k in list(new) + [k for k in old if k not in new] if old.get(k) != new.get(k)]
    lines, refused = [], []
    for k in changed:
        if k == "train.epochs":
            if cfg.optim.schedule in ("cosine", "poly"):
                raise ConfigError(f"train.epochs cannot change on resume ({old.get(k)} -> {new.get(k)}) under "
                                  f"optim.schedule={cfg.optim.schedule}: the rate is a function of the total length and "
                                  "would jump; start a new run")
            if new[k] < completed_epochs:
                raise ConfigError(f"train.epochs={new[k]} on resume, but {completed_epochs} epochs are already trained")
        elif not any(k == safe or k.startswith(safe + ".") for safe in RESUME_SAFE):
            refused.append(k)
            continue
        lines.append(f"resume: {k} changed from {old.get(k)!r} to {new.get(k)!r} (applied)")
    if refused:
        shown = ", ".join(f"{k} ({old.get(k)!r} -> {new.get(k)!r})" for k in refused)
        raise ConfigError(f"cannot change {shown} on resume: the saved run was trained with the old value; "
                          f"allowed on resume: {', '.join(RESUME_SAFE)}, train.epochs (schedule none/plateau)")
    return lines


class _RNGState:
    def state_dict(self) -> dict[str, Any]:
        return rng_state()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        set_rng_state(state)


class Trainer:
    """``Trainer(cfg, out_dir).fit()`` trains, validates, selects and writes the run.

    ``model``: a model to train instead of building one from ``cfg.model``; its
    ``requires_grad`` flags decide what the optimizer updates (``train.add_task``
    freezes all but the new code). ``train_tasks``: the tasks the steps train
    (default all of ``cfg.data.tasks``; validation always covers all of them).
    ``hooks``: extra hooks, run after the default ones and before metrics.json
    is written.
    """

    def __init__(self, cfg: Config, out_dir: str | Path | None, resume: bool = False, quiet: bool | None = None, *,
                 model: nn.Module | None = None, train_tasks: list[str] | None = None,
                 hooks: list[HookBase] | None = None) -> None:
        self.cfg = cfg
        self.out = Path(out_dir) if out_dir is not None else None
        self.device = resolve_device(cfg.train.device)
        if self.device.type == "cpu":
            tune_cpu_allocator()  # large activations stop being page-faulted in every step (tsn/runtime.py)
        self.dist: DistInfo = init_distributed(self.device.type)
        if self.device.type == "cuda" and self.dist.enabled:
            self.device = torch.device("cuda", self.dist.local_rank)
        if self.dist.is_main and self.out is not None:
            self._clean_temporaries()
        try:
            self.log = RunLogger(self.out, main=self.dist.is_main, quiet=quiet)
        except OSError as e:
            raise RunWriteError(f"cannot write to the run directory {self.out}: {e.strerror or e}") from None
        self.tasks = list(cfg.data.tasks)
        self.train_tasks = list(train_tasks or self.tasks)
        extra = [t for t in self.train_tasks if t not in self.tasks]
        if extra:
            raise ConfigError(f"train_tasks {', '.join(extra)} are not in data.tasks ({', '.join(self.tasks)})")
        self.amp = cfg.train.amp if cfg.train.amp is not None else self.device.type == "cuda"
        torch.manual_seed(cfg.train.seed)
        if cfg.train.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        set_fast_kernels(cfg.train.fast_kernels)  # the explicit kernel choice (tsn/nn/ops.py), process-wide like the above

        self.train_ds, self.sampler, self.loader = build_data(cfg, cfg.data.train_split, True, self.dist.rank, self.dist.world_size)
        self.val_ds, _, self.val_loader = build_data(cfg, cfg.data.val_split, False, self.dist.rank, self.dist.world_size)

        if model is None:
            model = build_model(cfg.model, task_channels_for(self.tasks, cfg.data.name))
        self.model = model.to(self.device)
        if cfg.train.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.criterion = build_criterion(cfg, self.tasks)
        self.loss_weights = {t: w for t, w in cfg.loss.weights.items() if t in self.train_tasks}
        self.weighting = build_weighting(cfg.loss.weighting, self.train_tasks, self.loss_weights,
                                         **cfg.loss.weighting_options).to(self.device)
        if self.weighting.requires_all_tasks and cfg.train.sampling != "all" and len(self.train_tasks) > 1:
            raise ConfigError(f"loss.weighting {cfg.loss.weighting!r} combines every task's gradient in one step; "
                              f"train.sampling {cfg.train.sampling!r} trains one task per step; use train.sampling=all")
        self.optimizer = build_optimizer(cfg.optim, self.model, self.weighting.param_groups(cfg.optim.weighting_lr))
        self.segments_per_epoch = len(self.train_tasks) if cfg.train.sampling == "paper" else 1
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
        self.history: list[dict[str, Any]] = []
        self.epoch_losses: dict[str, list[float]] = {}
        self.elapsed = 0.0
        self._stop_signal: int | None = None

        # what a checkpoint holds besides the model (top-level keys of the file, unchanged since the first release)
        self.checkpointables: dict[str, tuple[Any, bool]] = {}
        for name, obj in (("optimizer", self.optimizer), ("schedule", self.schedule), ("weighting", self.weighting),
                          ("rng", _RNGState())):
            self.register_checkpointable(name, obj)
        for key, attr in (("epoch", "epoch"), ("segment", "segment"), ("batch", "batch_in_segment"), ("step", "step"),
                          ("history", "history"), ("epoch_losses", "epoch_losses")):
            self.register_checkpointable(key, AttrState(self, attr))
        self.register_checkpointable("elapsed", AttrState(self, "elapsed"), required=False)

        self.hooks: list[HookBase] = []
        self.selection = BestCheckpoint()
        defaults: list[HookBase] = [TagAffinity(self)] if cfg.train.tag_every else []
        defaults += [PeriodicCheckpoint(), self.selection]
        if self.dist.is_main and cfg.train.images_every_val > 0:
            defaults.append(TensorBoardImages(cfg.train.images_every_val))
        self.register_hooks([*defaults, *(hooks or []), MetricsHook()])
        if resume:
            self._resume()

    # ------------------------------------------------------------------ hooks and state

    def register_hooks(self, hooks: list[HookBase]) -> None:
        for h in hooks:
            h.trainer = self
            if hasattr(h, "register"):
                h.register(self)
            self.hooks.append(h)

    def register_checkpointable(self, name: str, obj: Any, required: bool = True) -> None:
        """Save ``obj.state_dict()`` under ``name`` in every checkpoint and restore it on resume.
        ``required=False``: a checkpoint without the key (older, or written without the hook) resumes."""
        if name in self.checkpointables or name in ("model", "fingerprint", "config", "tasks"):
            raise ValueError(f"checkpoint key {name!r} is already taken")
        self.checkpointables[name] = (obj, required)

    @property
    def best(self) -> dict[str, Any]:
        """The model selection's state: {"score", "epoch", "metric"}."""
        return self.selection.state

    def checkpoint_path(self, name: str) -> Path | None:
        return self.out / "checkpoints" / name if self.out is not None else None

    def write(self, path: Path, writer, *args, **kwargs) -> Path:
        """``writer(path, *args, **kwargs)``, a failed write turned into one line naming the path."""
        try:
            return writer(path, *args, **kwargs)
        except OSError as e:
            raise RunWriteError(f"cannot write {path}: {e.strerror or e}; the files already there are unchanged") from None

    def _state(self) -> dict[str, Any]:
        return {"config": to_dict(self.cfg), "tasks": dict(self.model.task_channels),
                **{name: obj.state_dict() for name, (obj, _) in self.checkpointables.items()}}

    def save(self, name: str) -> None:
        if self.dist.is_main and self.out is not None:
            path = self.write(self.checkpoint_path(name), save_checkpoint, self.model, **self._state())
            # a small readable note of where the checkpoint stands (for people and for tests)
            self.write(path.with_suffix(".json"), atomic_write_json,
                       {"epoch": self.epoch, "segment": self.segment, "batch": self.batch_in_segment, "step": self.step})

    def _clean_temporaries(self) -> None:
        """Remove ``checkpoints/.*.tmp`` left by a process killed while writing (tsn/io.py names them so)."""
        for tmp in (self.out / "checkpoints").glob(".*.tmp") if (self.out / "checkpoints").is_dir() else []:
            try:
                tmp.unlink()
            except OSError:
                pass

    def _resume(self) -> None:
        if self.out is None:
            raise CheckpointError("--resume needs a run directory (--out)")
        path = self.out / "checkpoints" / "last.pt"
        imported = self.out / "checkpoints" / "best.pt"
        if not path.is_file() and imported.is_file() and load_checkpoint(imported).get("release"):
            self._start_from_import(imported)
            return
        if not path.is_file():
            raise CheckpointError(f"nothing to resume: {path} does not exist")
        ckpt = load_checkpoint(path)
        changes = resume_changes(ckpt["config"], self.cfg, ckpt.get("epoch", 0)) if "config" in ckpt else []
        load_model_state(self.model, ckpt)
        for name, (obj, required) in self.checkpointables.items():
            if name in ckpt:
                obj.load_state_dict(ckpt[name])
            elif required:
                raise CheckpointError(f"{path} has no {name!r} entry; it cannot be resumed")
        for line in changes:
            self.log.info(line)
        self.log.info(f"resumed from {path} at epoch {self.epoch + 1}, step {self.step}")

    def _start_from_import(self, best: Path) -> None:
        """``--resume`` on a run made by ``eval import-release``: the release ships weights only, so
        training continues from them with a fresh optimizer, schedule and data order (epoch 1).
        Training will replace best.pt, so the imported weights are first kept as release.pt."""
        kept = best.with_name("release.pt")
        if not kept.exists() and self.dist.is_main:
            self.write(kept, lambda p: atomic_write_bytes(p, best.read_bytes()))
        load_model_state(self.model, load_checkpoint(kept if kept.exists() else best))
        self.log.info(f"fine-tuning the imported release weights ({kept} keeps them): the release has no "
                      f"optimizer state, so the optimizer, schedule and data order start fresh at epoch 1")

    def _call(self, stage: str, *args) -> None:
        for h in self.hooks:
            getattr(h, stage)(*args)

    # ------------------------------------------------------------------ plan

    def segment_tasks(self, epoch: int) -> list[list[str] | None]:
        """Tasks of each segment of ``epoch``; None = one random task per step."""
        s, tasks = self.cfg.train.sampling, self.train_tasks
        if s == "all":
            return [list(tasks)]
        if s == "random":
            return [None]
        g = torch.Generator().manual_seed(_mix(self.cfg.train.seed, epoch, 7))
        return [[tasks[i]] for i in torch.randperm(len(tasks), generator=g).tolist()]

    def step_tasks(self, seg_tasks: list[str] | None, epoch: int, segment: int, batch: int) -> list[str]:
        if seg_tasks is not None:
            return seg_tasks
        g = torch.Generator().manual_seed(_mix(self.cfg.train.seed, epoch, segment, batch, 11))
        return [self.train_tasks[int(torch.randint(len(self.train_tasks), (1,), generator=g))]]

    # ------------------------------------------------------------------ signals

    def _install_signal_handlers(self) -> dict[int, Any]:
        """SIGINT/SIGTERM set a flag the loop reads at the next step boundary; a second one acts at once."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous: dict[int, Any] = {}

        def handler(signum, frame):
            self._stop_signal = signum
            signal.signal(signum, previous[signum])
            try:
                self.log.info(f"{signal.Signals(signum).name}: writing last.pt at the next step boundary, then stopping")
            except (ValueError, OSError):  # the log is already closed (the run was finishing)
                pass

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.getsignal(sig)
            signal.signal(sig, handler)
        return previous

    def _stop_requested(self) -> bool:
        stop = self._stop_signal is not None
        if self.dist.enabled:  # every process stops at the same step, or the others would wait for it forever
            stop = all_reduce_mean({"stop": float(stop)}, self.device)["stop"] > 0
            if stop and self._stop_signal is None:
                self._stop_signal = signal.SIGTERM
        return stop

    def _interrupt(self, save: bool) -> None:
        if save:
            self.save("last.pt")
        barrier()
        path = self.checkpoint_path("last.pt")
        self.log.info(f"interrupted at epoch {self.epoch + 1}, step {self.step}; {path} holds this position", console=False)
        raise Interrupted(self._stop_signal or signal.SIGINT, path)

    # ------------------------------------------------------------------ loop

    def fit(self) -> dict[str, Any]:
        previous = self._install_signal_handlers()
        try:
            return self._fit()
        finally:
            for sig, h in previous.items():
                signal.signal(sig, h)

    def _fit(self) -> dict[str, Any]:
        cfg = self.cfg
        if self.dist.is_main and self.out is not None:
            self.write(self.out / "config.yaml", atomic_write_text, to_yaml(cfg))
        n_params = parameter_report(self.model)
        # taken now, not when the record is written: the code that trains is the code at the start
        # (a resumed run records its last segment's; each segment's start is in log.txt)
        self._environment = run_environment(self.device.type)
        self.log.info(f"code {self._environment['code']}")
        self.log.info(
            f"{cfg.model.name} on {cfg.data.name} ({', '.join(self.tasks)}): {n_params['params'] / 1e6:.2f}M parameters, "
            f"{len(self.train_ds)} train / {len(self.val_ds)} val samples, sampling={cfg.train.sampling}, "
            f"weighting={cfg.loss.weighting}, device={self.device}, processes={self.dist.world_size}, "
            f"fast_kernels={cfg.train.fast_kernels}"
            + (f", {torch.get_num_threads()} threads, channels_last={cfg.train.channels_last}, "
               f"allocator={'tuned' if cpu_allocator_tuned() else 'system'}" if self.device.type == "cpu" else ""))
        self._call("before_train")
        self.progress = None
        if self.dist.is_main and wants_records():  # no terminal: one-line records instead of bars
            per_epoch = len(self.segment_tasks(self.epoch)) * self.sampler.num_batches()
            self.progress = ProgressRecords("train", cfg.train.epochs * per_epoch, self.log.info, done=self.step)
        if cfg.train.eval_at_start and not self.history:
            self._validate(epoch=0)
        t_start = time.time() - self.elapsed
        while self.epoch < cfg.train.epochs:
            self._train_epoch()
            self.elapsed = time.time() - t_start
            done = self.epoch + 1
            self.weighting.epoch_end({t: sum(v) / len(v) for t, v in self.epoch_losses.items() if v})
            # the position moves to the next epoch before validation, so best.pt says epoch=done like metrics.json
            self.epoch, self.segment, self.batch_in_segment, self.epoch_losses = done, 0, 0, {}
            if done % cfg.train.val_every == 0 or done == cfg.train.epochs:
                self._validate(epoch=done)
            self._call("after_epoch")
            if self._stop_requested():
                self._interrupt(save=False)  # after_epoch wrote last.pt
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
                if self.progress is not None:
                    self.progress.update(self.step, batch["image"].shape[0])
                if self.step % cfg.train.log_every == 0 or self.step == 1:
                    bar.set_postfix({t: f"{v:.3f}" for t, v in losses.items()})
                self._call("after_step", losses, weights)
                if self._stop_requested():
                    bar.close()
                    self._interrupt(save=True)
            self.segment, self.batch_in_segment = seg + 1, 0
        bar.close()

    def _train_step(self, batch: dict, tasks: list[str]) -> tuple[dict[str, float], dict[str, float]]:
        cfg = self.cfg
        batch = to_device(batch, self.device, cfg.train.channels_last)
        self._call("before_step", batch, tasks)
        with autocast(self.device, self.amp):
            preds = self.net(batch["image"], tasks=tasks)
        preds = {t: p.float() for t, p in preds.items()}
        losses = self.criterion(preds, {t: batch[t] for t in tasks if t in batch})
        if not bool(torch.isfinite(torch.stack([v.detach() for v in losses.values()])).all()):  # one sync per step
            t, v = next((t, v) for t, v in losses.items() if not torch.isfinite(v))
            last = self.checkpoint_path("last.pt")
            msg = (f"non-finite {t} loss ({float(v.detach())}) at step {self.step + 1} (epoch {self.epoch + 1}); "
                   f"stopped; last good checkpoint: {last if last and last.is_file() else 'none yet'}")
            self.log.info(msg, console=False)  # the command prints it as its error line
            raise TrainingError(msg)
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

    # ------------------------------------------------------------------ validation

    def score(self, results: dict[str, dict[str, float]], losses: dict[str, float]) -> tuple[float, str, bool]:
        """(value, name, higher_is_better) of the model-selection criterion:
        delta_m against single-task references; else ``eval.select_metric``;
        else the validation loss weighted as in training (every trained task counts)."""
        if self.reference is not None:
            return delta_m(results, self.reference), "delta_m", False
        sel = self.cfg.eval.select_metric
        if sel is None:
            static = self.weighting.static
            return sum(static[t] * v for t, v in losses.items() if t in static), "weighted_val_loss", False
        task, metric = sel.split("/", 1)
        if task not in results or metric not in results[task]:
            raise ConfigError(f"eval.select_metric {sel!r}: no such metric; {task} has {', '.join(results.get(task, {}))}")
        return results[task][metric], sel, higher_is_better(task, metric)

    def run_validation(self, validation: bool = False, on_batch=None) -> EvalResult:
        """Evaluate on the validation split; ``validation``: the tasks' coarser training-time options."""
        metrics = build_metrics(self.cfg, self.tasks, validation)
        return evaluate(self.model, self.val_loader, self.tasks, metrics, self.device, self.criterion, self.amp,
                        self.cfg.train.channels_last, progress=sys.stderr.isatty() and self.dist.is_main, on_batch=on_batch,
                        say=self.log.info if self.dist.is_main and wants_records() else None)

    def _validate(self, epoch: int) -> None:
        self._call("before_validation")
        listeners = [h for h in self.hooks if type(h).on_val_batch is not HookBase.on_val_batch]

        def on_batch(batch, preds):
            for h in listeners:
                h.on_val_batch(batch, preds)

        res = self.run_validation(True, on_batch=on_batch if listeners else None)
        if epoch > 0:  # the plateau schedule follows the mean validation loss, as in the release
            self.schedule.step_epoch(res.mean_loss)
        score, name, hib = self.score(res.metrics, res.losses)
        entry = {"epoch": epoch, "step": self.step, "val": res.metrics, "val_loss": res.losses,
                 name: score, "time_s": round(self.elapsed, 1)}
        if self.reference is not None:
            entry["delta_m"] = score
        self.history.append(entry)
        flat = {f"val/{t}/{k}": v for t, m in res.metrics.items() for k, v in m.items() if not k.startswith(("IoU_", "iou_"))}
        flat.update({f"val/loss_{t}": v for t, v in res.losses.items()})
        flat[f"val/{name}"] = score
        self.log.scalars(flat, self.step)
        self._call("after_validation", {**entry, "score": score, "score_name": name, "higher_is_better": hib})
        best = epoch > 0 and self.best["epoch"] == epoch
        summary = ", ".join(f"{t} {get_task(t).headline} {res.metrics[t].get(get_task(t).headline, float('nan')):.2f}" for t in self.tasks)
        self.log.info(f"epoch {epoch}: val {summary}; {name} {score:.3f}" + (" (best)" if best else ""))
        barrier()

    def _finish(self, n_params: dict) -> dict[str, Any]:
        """Final validation (of the best model, loaded by the selection hook) with the full protocol."""
        barrier()
        self._call("before_final_validation")
        res = self.run_validation()
        result: dict[str, Any] = {
            "name": self.cfg.name, "model": self.cfg.model.name, "dataset": self.cfg.data.name, "tasks": self.tasks,
            "params": n_params["params"], "by_part": n_params["by_part"], "best_epoch": None, "selected_by": None,
            "val": res.metrics, "val_loss": res.losses,
            "delta_m": delta_m(res.metrics, self.reference) if self.reference else None,
            "train_time_s": round(self.elapsed, 1), "steps": self.step, "processes": self.dist.world_size,
            "environment": self._environment, "history": self.history,
        }
        try:
            self._call("after_train", result)
        finally:
            self.log.close()
        return result


# build_data, metric_options, load_reference, resolve_device: re-exported for older imports (tsn.engine.factory)
__all__ = ["Interrupted", "RESUME_SAFE", "RunWriteError", "Trainer", "TrainingError", "build_data", "load_reference",
           "metric_options", "resolve_device", "resume_changes"]
