"""``check_config(cfg)``: every name in a parsed config, asked of the registry
that owns it, before any work starts.

:mod:`tsn.config` parses keys, types and ranges and knows no registry; the
builders check their own names again when they build, with the same lines.
The command-line tools call this right after loading a config, so that a
misspelled model, dataset option or weighting fails in one line at once (a
sweep checks every run's config before the first run starts).
"""

from __future__ import annotations

import math

from tsn.config import Config
from tsn.errors import ConfigError


def check_task_options(cfg: Config) -> None:
    """Every ``<loss|eval>.options.<task>`` key against what its task declares (unknown key: one
    line listing the valid ones); the task's loss / metric is built once with them, so bad values
    fail here too (validation's options as well)."""
    from tsn.losses import build_loss
    from tsn.metrics import metric_class
    from tsn.tasks import get_task

    for section, options in (("loss", cfg.loss.options), ("eval", cfg.eval.options)):
        for task, given in options.items():
            spec = get_task(str(task))
            try:
                if section == "loss":
                    build_loss(spec, **given)
                else:
                    for validation in (False, True):
                        metric_class(spec)(**spec.metric_kwargs(given, None, validation))
            except ConfigError as e:
                msg = str(e)
                raise ConfigError(msg if msg.startswith(f"unknown {section}.options") else
                                  f"{section}.options.{task}: {msg}") from None


def check_config(cfg: Config) -> Config:
    """Raise one-line ConfigErrors for unknown names and options; return ``cfg``."""
    from tsn.data import DATASETS, check_dataset_options
    from tsn.models.registry import check_model_config
    from tsn.registry import keyword_options
    from tsn.tasks import check_tasks, get_task
    from tsn.weighting import WEIGHTINGS

    check_model_config(cfg.model)
    check_task_options(cfg)
    tasks = check_tasks(cfg.data.tasks)
    info = DATASETS.get(cfg.data.name, "data.name").info
    missing = [t for t in tasks if t not in info.tasks]
    if missing:
        raise ConfigError(f"data.tasks: dataset {cfg.data.name!r} has no {', '.join(missing)}; it has {', '.join(info.tasks)}")
    for key in ("train_split", "val_split"):  # test_split is only read by evaluations that ask for it
        split = getattr(cfg.data, key)
        if split not in info.splits:
            raise ConfigError(f"data.{key}: dataset {cfg.data.name!r} has no split {split!r}; valid: {', '.join(info.splits)}")
    check_dataset_options(cfg.data.name, cfg.data.options, "data.options")
    if isinstance(cfg.data.label_drop, dict):
        for t in cfg.data.label_drop:
            get_task(t)
    for t in cfg.loss.weights:  # a table over tasks: weights of known tasks not trained here are not read
        get_task(t)
    for t, v in cfg.model.output_offset.items():  # like loss.weights: a table over known tasks
        try:
            get_task(t)
        except ConfigError as e:
            raise ConfigError(f"model.output_offset: {e}") from None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"model.output_offset.{t} must be a finite number, got {v!r}")
    cls = WEIGHTINGS.get(cfg.loss.weighting, "loss.weighting")
    keyword_options(cls.__init__, cfg.loss.weighting_options, "loss.weighting_options", typed=False,
                    owner=f"weighting {cfg.loss.weighting!r}")
    return cfg


__all__ = ["check_config", "check_task_options"]
