"""Configs as data: YAML files parsed into typed dataclasses.

A config file may name a ``base`` file (or a list of them, paths relative to
the file) whose keys it overrides; ``--set a.b=value`` overrides any key
after that. Parsing checks every key and type and stops with one line naming
the key and what is valid. The resolved config (``to_yaml``) is saved with
every run and reproduces it alone.
"""

from __future__ import annotations

import dataclasses
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from tsn.errors import ConfigError


@dataclass
class CodeConfig:
    kind: str = "orthogonal"  # orthogonal | onehot | gaussian | file
    dim: int = 100
    seed: int = 0
    path: str | None = None
    learnable: bool = False


@dataclass
class EmbeddingConfig:
    n_fc: int = 8
    width: int | None = None  # None: the code dimension
    equalized: bool = True


@dataclass
class ModelConfig:
    name: str = "tsn"  # tsn | task_in | task_bn | multi_decoder | single_task | rcm
    encoder: str = "resnet18"
    encoder_width: int = 64  # 64 = torchvision's ResNet; smaller for CPU-sized runs
    pretrained: bool | str = False
    encoder_norm: Literal["bn", "frozen_bn"] = "bn"  # frozen_bn: BN as a fixed affine (detectron2's default)
    skip_widths: list[int] = field(default_factory=lambda: [64, 64, 128, 256, 512])
    up_widths: list[int] = field(default_factory=lambda: [512, 256, 256, 128, 64])
    head: str = "mean"  # mean (the release's) | slice
    head_width: int | None = None  # mean head: shared output width (None: widest task)
    act: str | None = None  # None: leaky_relu for shared decoders, relu for per-task ones
    code: CodeConfig = field(default_factory=CodeConfig)
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)


@dataclass
class DataConfig:
    name: str = "synthetic"
    root: str | None = None
    tasks: list[str] = field(default_factory=lambda: ["edge", "semseg", "parts", "normals", "sal"])
    size: int | list[int] = 128
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    augment: bool = True
    label_drop: float | dict[str, float] = 0.0
    label_drop_seed: int = 0
    num_workers: int = 0
    options: dict[str, Any] = field(default_factory=dict)  # dataset-specific (e.g. synthetic length)


@dataclass
class LossConfig:
    weights: dict[str, float] = field(default_factory=dict)  # missing task: 1.0
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # loss.options.<task>.<key> (see tsn.tasks)
    weighting: str = "fixed"  # fixed | uncertainty | dwa | gradnorm
    weighting_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimConfig:
    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-4
    encoder_lr: float | None = None  # None: same as lr (the release: 1e-6)
    weight_decay: float = 0.0
    momentum: float = 0.9
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    schedule: Literal["plateau", "poly", "cosine", "none"] = "plateau"
    warmup_epochs: int = 0
    plateau_factor: float = 0.5
    plateau_patience: int = 10
    poly_power: float = 0.9
    min_lr: float = 0.0
    clip_grad: float | None = None
    weighting_lr: float = 1e-3


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 16
    sampling: Literal["paper", "all", "random"] = "paper"
    seed: int = 0
    val_every: int = 1
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool | None = None  # None: bf16 autocast on CUDA, off on CPU
    channels_last: bool = False
    fast_kernels: bool = True  # tsn.nn.ops fast paths (docs/PERFORMANCE.md); false: the reference kernels
    compile: bool = False
    deterministic: bool = False
    log_every: int = 10
    images_every_val: int = 4  # prediction images written to TensorBoard per validation
    checkpoint_every: int = 0  # >0: also write checkpoints/last.pt every k steps (mid-epoch resume)
    eval_at_start: bool = False  # validate the untrained model first (history epoch 0)
    tag_every: int = 0  # >0: record TAG inter-task affinities every k steps
    tag_lr: float | None = None


@dataclass
class EvalConfig:
    batch_size: int = 16
    single_task: str | None = None  # run dir or metrics.json of single-task references (for delta_m)
    select_metric: str | None = None  # "task/metric" for best.pt without single-task refs; None: weighted val loss
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # eval.options.<task>.<key> (see tsn.tasks)
    geometry: Literal["pad", "release"] = "pad"  # test-time geometry of python -m eval (tsn/engine/geometry.py)

    @property
    def val_edge_thresholds(self) -> int:
        """Old name of eval.options.edge.val_thresholds, still read by the trainer."""
        from tsn.tasks import get_task

        return get_task("edge").options("eval", self.options.get("edge"))["val_thresholds"]


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    name: str = ""  # a label for tables; empty: the config file's stem


# ---------------------------------------------------------------- parsing


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in get_args(tp))}]"
    if tp is type(None):
        return "null"
    if tp is Any:
        return "any"
    return getattr(tp, "__name__", str(tp))


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key + ".")
    if origin in (Union, types.UnionType):
        for arg in get_args(tp):
            try:
                return _coerce(arg, value, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise ConfigError(f"{key}: {value!r} is not valid; valid: {', '.join(map(str, get_args(tp)))}")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (arg,) = get_args(tp)
        return [_coerce(arg, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        _, arg = get_args(tp)
        return {str(k): _coerce(arg, v, f"{key}.{k}") for k, v in value.items()}
    if tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")


def from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types."""
    where = prefix.rstrip(".") or "config"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(f"unknown config key {prefix}{key}; valid keys here: {', '.join(names)}")
        kwargs[key] = _coerce(hints[key], value, prefix + key)
    return cls(**kwargs)


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_yaml_mapping(path: str | Path, what: str = "config") -> dict:
    """A YAML file that must hold a mapping; every failure is one ConfigError line."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"{what} file not found: {path}")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p} must hold a mapping of {what} keys")
    return data


def load_yaml_with_bases(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """Read a YAML config, resolving ``base:`` includes (relative to the file)."""
    p = Path(path).expanduser().resolve()
    if p in _seen:
        raise ConfigError(f"config base files include each other: {' -> '.join(map(str, _seen + (p,)))}")
    data = read_yaml_mapping(p if p.is_file() else path)
    bases = data.pop("base", None)
    if bases is None:
        return data
    merged: dict = {}
    for b in [bases] if isinstance(bases, str) else bases:
        merged = _merge(merged, load_yaml_with_bases(p.parent / b, _seen + (p,)))
    return _merge(merged, data)


def parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set expects key=value (for example train.epochs=5), got {item!r}")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    data = _merge({}, data)
    for item in overrides:
        keys, value = parse_override(item)
        node = data
        for k in keys[:-1]:
            nxt = node.get(k)
            if nxt is None:
                nxt = node[k] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {item}: {k} is not a section")
            node = nxt
        node[keys[-1]] = value
    return data


# ---------------------------------------------------------------- per-task options (tsn.tasks)

#: Old flat keys -> their place under the task (still accepted; giving both is an error).
TASK_OPTION_ALIASES = {
    "loss.edge_pos_weight": "loss.options.edge.pos_weight",
    "eval.edge_thresholds": "eval.options.edge.thresholds",
    "eval.val_edge_thresholds": "eval.options.edge.val_thresholds",
    "eval.edge_max_dist": "eval.options.edge.max_dist",
    "eval.sal_headline": "eval.options.sal.headline",
}


def task_options(raw: dict) -> dict:
    """Move old per-task keys to ``<loss|eval>.options.<task>.<key>`` and check every
    ``options`` key against what its task declares (unknown key: one line listing the valid
    ones); the task's loss / metric is built once with them, so bad values fail here too."""
    from tsn.tasks import get_task

    raw = _merge({}, raw)
    for old, new in TASK_OPTION_ALIASES.items():
        section, key = old.split(".")
        _, _, task, new_key = new.split(".")
        sec = raw.get(section)
        if not isinstance(sec, dict) or key not in sec:
            continue
        opts = sec.setdefault("options", {})
        if not isinstance(opts, dict) or not isinstance(opts.setdefault(task, {}), dict):
            continue  # a wrong type is reported by the parser
        if new_key in opts[task]:
            raise ConfigError(f"{old} and {new} both given; {old} is the old name of {new}: keep only {new}")
        opts[task][new_key] = sec.pop(key)
    for section in ("loss", "eval"):
        opts = (raw.get(section) or {}).get("options") if isinstance(raw.get(section), dict) else None
        if not isinstance(opts, dict):
            continue
        for task, given in opts.items():
            if not isinstance(given, dict):
                raise ConfigError(f"{section}.options.{task}: expected a mapping of option: value, got {given!r}")
            spec = get_task(str(task))
            if section == "loss":  # building checks the values too, before any work
                spec.build_loss(given)
            else:
                spec.metric_builder()(**spec.metric_kwargs(given))
    return raw


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, data: dict | None = None) -> Config:
    """Load, override, parse and validate a config."""
    raw = load_yaml_with_bases(path) if path is not None else dict(data or {})
    raw = apply_overrides(raw, overrides or [])
    raw = task_options(raw)
    cfg = from_dict(Config, raw)
    if not cfg.name and path is not None:
        cfg.name = Path(path).stem
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Check every name against its registry, so errors come before any work."""
    from tsn import data as tsn_data
    from tsn.codes import CODES
    from tsn.models.encoders import ENCODERS
    from tsn.models.heads import HEAD_KINDS
    from tsn.models.registry import MODELS
    from tsn.nn.blocks import ACTIVATIONS
    from tsn.tasks import check_tasks, get_task
    from tsn.weighting import WEIGHTINGS

    MODELS.get(cfg.model.name)
    ENCODERS.get(cfg.model.encoder)
    CODES.get(cfg.model.code.kind)
    if cfg.model.head not in HEAD_KINDS:
        raise ConfigError(f"model.head: {cfg.model.head!r} is not valid; valid: {', '.join(HEAD_KINDS)}")
    if cfg.model.act is not None and cfg.model.act not in ACTIVATIONS:
        raise ConfigError(f"model.act: {cfg.model.act!r} is not valid; valid: {', '.join(ACTIVATIONS)}")
    for key in ("skip_widths", "up_widths"):
        w = getattr(cfg.model, key)
        if len(w) != 5 or min(w) < 1:
            raise ConfigError(f"model.{key} must list 5 positive widths, got {w}")
    tasks = check_tasks(cfg.data.tasks)
    info = tsn_data.dataset_info(cfg.data.name)
    missing = [t for t in tasks if t not in info.tasks]
    if missing:
        raise ConfigError(f"data.tasks: dataset {cfg.data.name!r} has no {', '.join(missing)}; it has {', '.join(info.tasks)}")
    for t in list(cfg.loss.weights):  # weights of known tasks not trained here are ignored (base files list all)
        get_task(t)
    WEIGHTINGS.get(cfg.loss.weighting)
    for key in ("epochs", "batch_size", "val_every"):
        if getattr(cfg.train, key) < 1:
            raise ConfigError(f"train.{key} must be at least 1")
    if cfg.eval.select_metric is not None and "/" not in cfg.eval.select_metric:
        raise ConfigError("eval.select_metric must look like task/metric, e.g. semseg/mIoU")


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def to_yaml(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


__all__ = [
    "CodeConfig", "Config", "DataConfig", "EmbeddingConfig", "EvalConfig", "LossConfig", "ModelConfig",
    "OptimConfig", "TrainConfig", "apply_overrides", "from_dict", "load_config", "to_dict", "to_yaml",
]
