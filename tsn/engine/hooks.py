"""Trainer hooks (in the spirit of detectron2's ``HookBase``).

The trainer's loop knows steps, epochs and validations; everything that
*reacts* to them is a hook: TAG affinity measurement, model selection and
``best.pt``, the periodic ``last.pt``, TensorBoard prediction images and
``metrics.json``. A hook that keeps state across a resume declares it once
with ``trainer.register_checkpointable(name, obj)`` (an object with
``state_dict``/``load_state_dict``); the same registration is used to save and
to load, so the two cannot drift apart.

Stages, in the order they run::

    before_train()                          once, after a resume
    before_step(batch, tasks)               batch on the device, before forward
    after_step(losses, weights)             after optimizer.step()
    before_validation() / on_val_batch(batch, preds) / after_validation(entry)
    after_epoch()                           position already at the next epoch
    before_final_validation()               e.g. load best.pt
    after_train(result)                     may add keys to the result dict

Hooks run in registration order; the trainer's default list ends with
:class:`MetricsHook`, so keys added in ``after_train`` reach ``metrics.json``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from tsn.errors import ConfigError



class HookBase:
    """Base class; every stage is a no-op. ``self.trainer`` is set by ``Trainer.register_hooks``
    (typed ``Any``: the trainer imports this module, so this module does not import it back)."""

    trainer: Any

    def before_train(self) -> None: ...

    def before_step(self, batch: dict, tasks: list[str]) -> None: ...

    def after_step(self, losses: dict[str, float], weights: dict[str, float]) -> None: ...

    def before_validation(self) -> None: ...

    def on_val_batch(self, batch: dict, preds: dict[str, Tensor]) -> None: ...

    def after_validation(self, entry: dict[str, Any]) -> None: ...

    def after_epoch(self) -> None: ...

    def before_final_validation(self) -> None: ...

    def after_train(self, result: dict[str, Any]) -> None: ...


class AttrState:
    """``state_dict``/``load_state_dict`` over one attribute of an object, so
    a plain value (a counter, a list) is checkpointed like a module."""

    def __init__(self, obj: Any, attr: str) -> None:
        self.obj, self.attr = obj, attr

    def state_dict(self) -> Any:
        return getattr(self.obj, self.attr)

    def load_state_dict(self, value: Any) -> None:
        setattr(self.obj, self.attr, value)


class PeriodicCheckpoint(HookBase):
    """``last.pt`` every ``train.checkpoint_every`` steps (mid-epoch resume) and after every epoch."""

    def after_step(self, losses, weights) -> None:
        k = self.trainer.cfg.train.checkpoint_every
        if k and self.trainer.step % k == 0:
            self.trainer.save("last.pt")

    def after_epoch(self) -> None:
        self.trainer.save("last.pt")


class BestCheckpoint(HookBase):
    """Model selection: after each validation past epoch 0, keep ``best.pt`` if the
    score improved (direction from the criterion). ``best.pt`` is written after the
    trainer's position has advanced to the validated epoch, so its ``epoch`` is
    the epoch metrics.json calls ``best_epoch``. Before the final validation the
    best weights are loaded."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {"score": None, "epoch": None}

    def register(self, trainer: Any) -> None:
        trainer.register_checkpointable("best", AttrState(self, "state"))

    def is_better(self, score: float, higher_is_better: bool) -> bool:
        best = self.state["score"]
        return best is None or (score > best if higher_is_better else score < best)

    def after_validation(self, entry: dict[str, Any]) -> None:
        if entry["epoch"] > 0 and self.is_better(entry["score"], entry["higher_is_better"]):
            self.state = {"score": entry["score"], "epoch": entry["epoch"], "metric": entry["score_name"]}
            self.trainer.save("best.pt")

    def before_final_validation(self) -> None:
        from tsn.engine.checkpoint import load_checkpoint, load_model_state

        path = self.trainer.checkpoint_path("best.pt")
        if path is not None and path.is_file():
            load_model_state(self.trainer.model, load_checkpoint(path))

    def after_train(self, result: dict[str, Any]) -> None:
        result["best_epoch"] = self.state["epoch"]
        result["selected_by"] = self.state.get("metric")


class TensorBoardImages(HookBase):
    """The first ``train.images_every_val`` validation predictions as coloured panels."""

    def __init__(self, limit: int) -> None:
        self.limit, self.images, self.seen = limit, {}, 0

    def before_validation(self) -> None:
        self.images, self.seen = {}, 0

    def on_val_batch(self, batch: dict, preds: dict[str, Tensor]) -> None:
        if self.seen >= self.limit:
            return
        from tsn.engine.visuals import prediction_panel

        for i in range(min(batch["image"].shape[0], self.limit - self.seen)):
            self.images[f"val_images/{self.seen}"] = prediction_panel(batch, preds, i, self.trainer.tasks)
            self.seen += 1

    def after_validation(self, entry: dict[str, Any]) -> None:
        for tag, img in self.images.items():
            self.trainer.log.image(tag, img, self.trainer.step)


class TagAffinity(HookBase):
    """TAG (Fifty et al., NeurIPS 2021): a look-ahead affinity measurement every
    ``train.tag_every`` steps, before the step, on the step's batch.

    Always over all tasks (also under paper/random sampling, where the step
    itself trains one task). Losses are the criterion's times the static
    ``loss.weights`` (so task i's look-ahead step has the scale of its share
    of the training update; Z_{i->j} is a ratio, so j's weight cancels);
    learned weightings are not applied. Plain SGD step of ``train.tag_lr``
    (default: the current decoder-group lr) on ``model.shared_parameters()``;
    the model stays in train mode and every buffer (BN running statistics)
    and the RNG state are restored, so the run continues bit-identically.
    Under DDP each process measures on its shard and the affinities are
    averaged. The mean Z over training goes to metrics.json (``tag_affinity``).
    """

    def __init__(self, trainer: Any) -> None:
        from tsn.grouping import AffinityAccumulator

        t = trainer.cfg.train  # tag_every >= 0 and tag_lr > 0 are checked when the config is read
        if len(trainer.tasks) < 2 or not trainer.model.shared_parameters():
            raise ConfigError(f"train.tag_every needs >= 2 tasks and shared parameters; {trainer.cfg.model.name} "
                              f"with {len(trainer.tasks)} task(s) has none to measure affinities on")
        self.every = t.tag_every
        self.acc = AffinityAccumulator()

    def register(self, trainer: Any) -> None:
        trainer.register_checkpointable("tag", self.acc, required=False)

    def before_step(self, batch: dict, tasks: list[str]) -> None:
        tr = self.trainer
        if tr.step % self.every:
            return
        from tsn.engine.distributed import all_reduce_mean
        from tsn.engine.evaluate import autocast
        from tsn.grouping import tag_affinity_step

        lr = tr.cfg.train.tag_lr or next(g["lr"] for g in tr.optimizer.param_groups if g.get("name") == "decoder")
        targets = {t: batch[t] for t in tr.tasks if t in batch}
        static = tr.weighting.static

        def losses() -> dict[str, Tensor]:
            with autocast(tr.device, tr.amp):
                preds = tr.model(batch["image"], tasks=tr.tasks)
            out = tr.criterion({t: p.float() for t, p in preds.items()}, targets)
            return {t: static[t] * v for t, v in out.items()}

        devices = [tr.device] if tr.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            z = tag_affinity_step(tr.model.shared_parameters(), losses, lr, restore=list(tr.model.buffers()))
        if tr.dist.enabled:
            flat = all_reduce_mean({f"{i}\t{j}": v for (i, j), v in z.items()}, tr.device)
            z = {tuple(k.split("\t")): v for k, v in flat.items()}
        self.acc.update(z)

    def after_train(self, result: dict[str, Any]) -> None:
        result["tag_affinity"] = self.acc.matrix(self.trainer.tasks)  # row i onto column j
        result["tag_measurements"] = max(self.acc.counts.values(), default=0)


class MetricsHook(HookBase):
    """``metrics.json``: the final result dict, written atomically by the main process."""

    def after_train(self, result: dict[str, Any]) -> None:
        tr = self.trainer
        if tr.dist.is_main and tr.out is not None:
            from tsn.io import atomic_write_json

            tr.write(tr.out / "metrics.json", atomic_write_json, result)


__all__ = ["AttrState", "BestCheckpoint", "HookBase", "MetricsHook", "PeriodicCheckpoint", "TagAffinity",
           "TensorBoardImages"]
