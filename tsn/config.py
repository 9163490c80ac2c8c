"""Configs as data: YAML files parsed into typed dataclasses.

A config file may name a ``base`` file (or a list of them, paths relative to
the file) whose keys it overrides; ``--set a.b=value`` overrides any key
after that. Mappings merge key by key, in files and in ``--set`` alike
(``--set 'loss.weights={semseg: 2}'`` changes semseg's weight and keeps the
others); a mapping holding ``_replace_: true`` replaces the one below it
instead (``loss: {weights: {_replace_: true, semseg: 1}}``). Lists and
scalars always replace.

Parsing checks every key, type and numeric range and stops with one line
naming the key and what is valid; floats may be written any way Python reads
them (``1e-4``, ``1E-4``, ``1.0e6``), not only as YAML 1.1 floats. Names
(models, datasets, encoders, ...) are not checked here: this module imports
no registry. Each registry checks its own names when it builds, and
:func:`tsn.validate.check_config` asks all of them up front. The resolved
config (``to_yaml``) is saved with every run and reproduces it alone.

Model-specific options live under ``model.options.<model name>`` (TSN's task
codes and embedding: ``model.options.tsn.code.dim``) and are checked against
that model's builder. Renamed keys stay readable: each dataclass's
``ALIASES`` maps an old key to its new place (``model.code`` ->
``model.options.tsn.code``, ``eval.edge_thresholds`` ->
``eval.options.edge.thresholds``), in files, checkpoints' configs and
``--set`` alike; one file giving both names is an error.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from tsn.errors import ConfigError

REPLACE = "_replace_"


# ---------------------------------------------------------------- ranges


@dataclass(frozen=True)
class Range:
    """A closed or open interval a number (or every number in a list/mapping) must lie in."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def contains(self, x: float) -> bool:
        if self.lo is not None and (x <= self.lo if self.lo_open else x < self.lo):
            return False
        if self.hi is not None and (x >= self.hi if self.hi_open else x > self.hi):
            return False
        return True

    def __str__(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {self.lo:g}"
        return f"{'<' if self.hi_open else '<='} {self.hi:g}"


def option(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING, ge: float | None = None,
           gt: float | None = None, le: float | None = None, lt: float | None = None) -> Any:
    """A dataclass field with a numeric range (checked by :func:`check_ranges`)."""
    rng = Range(ge if gt is None else gt, le if lt is None else lt, gt is not None, lt is not None)
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata={"range": rng})
    return field(default=default, metadata={"range": rng})


POSITIVE = {"ge": 1}  # counts and widths


# ---------------------------------------------------------------- schema


@dataclass
class ModelConfig:
    ALIASES: ClassVar[dict[str, str]] = {"code": "options.tsn.code", "embedding": "options.tsn.embedding"}

    name: str = "tsn"  # tsn | task_in | task_bn | multi_decoder | single_task | rcm
    encoder: str = "resnet18"
    encoder_width: int = option(64, **POSITIVE)  # 64 = torchvision's ResNet; smaller for CPU-sized runs
    pretrained: bool | str = False
    encoder_norm: Literal["bn", "frozen_bn"] = "bn"  # frozen_bn: BN as a fixed affine (detectron2's default)
    skip_widths: list[int] = option(factory=lambda: [64, 64, 128, 256, 512], **POSITIVE)
    up_widths: list[int] = option(factory=lambda: [512, 256, 256, 128, 64], **POSITIVE)
    head: str = "mean"  # mean (the release's) | slice
    head_width: int | None = option(None, **POSITIVE)  # mean head: shared output width (None: widest task)
    output_offset: dict[str, float] = field(default_factory=dict)  # task -> constant added to its output (tsn/models/heads.py)
    norm_init_std: float = option(0.0, ge=0)  # task_in/task_bn: per-task affine init 1+std*N, std*N (0: the paper's 1, 0)
    act: str | None = None  # None: leaky_relu for shared decoders, relu for per-task ones
    # per model name, that builder's keyword options (checked against its signature when it builds)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class DataConfig:
    name: str = "synthetic"
    root: str | None = None
    tasks: list[str] = field(default_factory=lambda: ["edge", "semseg", "parts", "normals", "sal"])
    size: int | list[int] = option(128, ge=8)  # an int or [height, width]
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    augment: bool = True
    label_drop: float | dict[str, float] = option(0.0, ge=0, le=1)
    label_drop_seed: int = option(0, ge=0)
    num_workers: int = option(0, ge=0)
    options: dict[str, Any] = field(default_factory=dict)  # dataset-specific (e.g. synthetic length); the dataset checks them


@dataclass
class LossConfig:
    ALIASES: ClassVar[dict[str, str]] = {"edge_pos_weight": "options.edge.pos_weight"}

    weights: dict[str, float] = option(factory=dict, ge=0)  # missing task: 1.0; tasks not trained are not read
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # loss.options.<task>.<key> (see tsn.tasks)
    weighting: str = "fixed"  # a name in tsn.weighting.WEIGHTINGS (a wrong one is refused listing them)
    weighting_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimConfig:
    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = option(1e-4, gt=0)
    encoder_lr: float | None = option(None, ge=0)  # None: same as lr (the release: 1e-6); 0 freezes the encoder
    weight_decay: float = option(0.0, ge=0)
    momentum: float = option(0.9, ge=0, lt=1)
    betas: list[float] = option(factory=lambda: [0.9, 0.999], ge=0, lt=1)
    schedule: Literal["plateau", "poly", "cosine", "none"] = "plateau"
    warmup_epochs: int = option(0, ge=0)
    plateau_factor: float = option(0.5, gt=0, lt=1)
    plateau_patience: int = option(10, ge=0)
    poly_power: float = option(0.9, gt=0)
    min_lr: float = option(0.0, ge=0)
    clip_grad: float | None = option(None, gt=0)
    weighting_lr: float = option(1e-3, gt=0)
    norm_lr: float | None = option(None, gt=0)  # task_in/task_bn: lr of the per-task norm affines (None: lr)


DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


@dataclass
class TrainConfig:
    epochs: int = option(10, **POSITIVE)
    batch_size: int = option(16, **POSITIVE)
    sampling: Literal["paper", "all", "random"] = "paper"
    seed: int = option(0, ge=0)
    val_every: int = option(1, **POSITIVE)
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    amp: bool | None = None  # None: bf16 autocast on CUDA, off on CPU
    channels_last: bool = False
    fast_kernels: bool = True  # tsn.nn.ops fast paths (docs/PERFORMANCE.md); false: the reference kernels
    compile: bool = False
    deterministic: bool = False
    log_every: int = option(10, **POSITIVE)
    images_every_val: int = option(4, ge=0)  # prediction images written to TensorBoard per validation
    checkpoint_every: int = option(0, ge=0)  # >0: also write checkpoints/last.pt every k steps (mid-epoch resume)
    eval_at_start: bool = False  # validate the untrained model first (history epoch 0)
    tag_every: int = option(0, ge=0)  # >0: record TAG inter-task affinities every k steps
    tag_lr: float | None = option(None, gt=0)


@dataclass
class EvalConfig:
    ALIASES: ClassVar[dict[str, str]] = {  # the flat per-task keys from before tsn.tasks
        "edge_thresholds": "options.edge.thresholds", "val_edge_thresholds": "options.edge.val_thresholds",
        "edge_max_dist": "options.edge.max_dist", "edge_protocol": "options.edge.protocol",
        "sal_headline": "options.sal.headline"}

    batch_size: int = option(16, **POSITIVE)
    single_task: str | None = None  # run dir or metrics.json of single-task references (for delta_m)
    select_metric: str | None = None  # "task/metric" for best.pt without single-task refs; None: weighted val loss
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # eval.options.<task>.<key> (see tsn.tasks)
    geometry: Literal["pad", "release"] = "pad"  # test-time geometry of python -m eval (tsn/engine/geometry.py)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    name: str = ""  # a label for tables; empty: the config file's stem


# ---------------------------------------------------------------- YAML


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; every user means a float."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def yaml_load(text: str) -> Any:
    """``yaml.safe_load`` that also reads ``1e-4`` as a float."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


def _yaml_error(where: Path | str, e: yaml.YAMLError) -> ConfigError:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    if mark is not None:
        return ConfigError(f"{where}:{mark.line + 1}:{mark.column + 1}: invalid YAML: {problem}")
    return ConfigError(f"{where} is not valid YAML: {problem}")


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


def coerce(tp: Any, value: Any, key: str) -> Any:
    """``value`` as type ``tp`` (dataclasses, unions, literals, lists, dicts,
    scalars); a float may be given as any string Python's ``float`` reads."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key + ".")
    if origin in (Union, types.UnionType):
        for arg in get_args(tp):
            try:
                return coerce(arg, value, key)
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
        return [coerce(arg, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        _, arg = get_args(tp)
        return {str(k): coerce(arg, v, f"{key}.{k}") for k, v in value.items()}
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
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")


_coerce = coerce  # the old private name


def _move_alias(data: dict, old: str, new: str, where: str) -> None:
    """``data[old]`` to the path ``new``; an error if that path holds a value already
    (mappings merge when they share no key)."""
    value, node, path = data.pop(old), data, new.split(".")
    for k in path[:-1]:
        nxt = node.get(k)
        if not isinstance(nxt, dict):
            nxt = node[k] = {}
        node = nxt
    there = node.get(path[-1])
    if there is not None:
        if not (isinstance(there, dict) and isinstance(value, dict) and not set(there) & set(value)):
            raise ConfigError(f"{where}{old} and {where}{new} both given; {where}{old} is the old name of "
                              f"{where}{new}: keep only {where}{new}")
        value = _merge(there, value)
    node[path[-1]] = value


def migrate(cls: type, data: Any, prefix: str = "") -> Any:
    """Move old keys (a dataclass's ``ALIASES``, at any depth) to their new place."""
    if not isinstance(data, dict) or not dataclasses.is_dataclass(cls):
        return data
    out = copy.deepcopy(data)
    for old, new in getattr(cls, "ALIASES", {}).items():
        if old in out:
            _move_alias(out, old, new, prefix)
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in out and dataclasses.is_dataclass(hints[f.name]):
            out[f.name] = migrate(hints[f.name], out[f.name], f"{prefix}{f.name}.")
    return out


def _alias_key(keys: list[str], cls: type = Config) -> list[str]:
    """The current path of a possibly old dotted key (``model.code.dim`` -> ``model.options.tsn.code.dim``)."""
    out: list[str] = []
    i = 0
    while i < len(keys) and dataclasses.is_dataclass(cls):
        k = keys[i]
        alias = getattr(cls, "ALIASES", {}).get(k)
        if alias is not None:
            return out + alias.split(".") + keys[i + 1:]
        out.append(k)
        hints = get_type_hints(cls)
        cls = hints.get(k)
        i += 1
    return out + keys[i:]


def from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types."""
    where = prefix.rstrip(".") or "config"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    data = migrate(cls, data)
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(f"unknown config key {prefix}{key}; valid keys here: {', '.join(names)}")
        kwargs[key] = coerce(hints[key], value, prefix + key)
    return cls(**kwargs)


def _strip_markers(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_markers(v) for k, v in value.items() if k != REPLACE}
    return value


def _merge(base: Any, over: Any) -> Any:
    """``over`` on top of ``base``: mappings merge key by key unless ``over`` says ``_replace_: true``."""
    if not isinstance(over, dict):
        return over
    replace = over.get(REPLACE, False)
    if replace not in (True, False):
        raise ConfigError(f"{REPLACE} must be true or false, got {replace!r}")
    if replace or not isinstance(base, dict):
        return _strip_markers(over)
    out = dict(base)
    for k, v in over.items():
        if k != REPLACE:
            out[k] = _merge(out.get(k), v)
    return out


def read_yaml_mapping(path: str | Path, what: str = "config", included_by: Path | None = None) -> dict:
    """A YAML file that must hold a mapping; every failure is one ConfigError line
    (syntax errors name the file, line and column)."""
    p = Path(path).expanduser()
    if not p.is_file():
        by = f" (the base of {included_by})" if included_by is not None else ""
        raise ConfigError(f"{what} file not found: {path}{by}")
    try:
        data = yaml_load(p.read_text())
    except yaml.YAMLError as e:
        raise _yaml_error(p, e) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {p}: {e}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p} must hold a mapping of {what} keys")
    return data


def load_yaml_with_bases(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """Read a YAML config, resolving ``base:`` includes (relative to the file)."""
    p = Path(path).expanduser().resolve()
    if p in _seen:
        raise ConfigError(f"config base files include each other: {' -> '.join(map(str, _seen + (p,)))}")
    data = read_yaml_mapping(p if p.is_file() else path, included_by=_seen[-1] if _seen else None)
    bases = data.pop("base", None)
    data = migrate(Config, data)
    if bases is None:
        return data
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{p}: base must be a file name or a list of them, got {bases!r}")
    merged: dict = {}
    for b in bases:
        merged = _merge(merged, load_yaml_with_bases(p.parent / b, _seen + (p,)))
    return _merge(merged, data)


def parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set expects key=value (for example train.epochs=5), got {item!r}")
    key, raw = item.split("=", 1)
    keys = key.strip().split(".")
    if not all(keys):
        raise ConfigError(f"--set {item}: {key.strip()!r} is not a dotted key (for example optim.lr)")
    try:
        value = yaml_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return _alias_key(keys), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """``--set`` items on top of ``data``; a mapping value merges into the mapping there."""
    data = _merge({}, migrate(Config, data))
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
        node[keys[-1]] = _merge(node.get(keys[-1]), value)
    return data


# ---------------------------------------------------------------- per-task options (tsn.tasks)

def task_options(raw: dict) -> dict:
    """Check every ``<loss|eval>.options.<task>`` key against what its task declares
    (unknown key: one line listing the valid ones); the task's loss / metric is built
    once with them, so bad values fail here too. Returns ``raw``."""
    from tsn.tasks import get_task

    for section in ("loss", "eval"):
        opts = (raw.get(section) or {}).get("options") if isinstance(raw.get(section), dict) else None
        if not isinstance(opts, dict):
            continue
        for task, given in opts.items():
            if not isinstance(given, dict):
                raise ConfigError(f"{section}.options.{task}: expected a mapping of option: value, got {given!r}")
            spec = get_task(str(task))
            try:  # building checks the values too, before any work (validation's options as well)
                if section == "loss":
                    spec.build_loss(given)
                else:
                    for validation in (False, True):
                        spec.metric_builder()(**spec.metric_kwargs(given, None, validation))
            except ConfigError as e:
                msg = str(e)
                raise ConfigError(msg if msg.startswith(f"unknown {section}.options") else
                                  f"{section}.options.{task}: {msg}") from None
    return raw


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, data: dict | None = None) -> Config:
    """Load, override, parse and check a config (keys, types, ranges; not names)."""
    raw = load_yaml_with_bases(path) if path is not None else migrate(Config, dict(data or {}))
    raw = _strip_markers(apply_overrides(raw, overrides or []))
    raw = task_options(raw)
    cfg = from_dict(Config, raw)
    if not cfg.name and path is not None:
        cfg.name = Path(path).stem
    validate(cfg)
    return cfg


def check_ranges(obj: Any, prefix: str = "") -> None:
    """Every number of dataclass ``obj`` (nested dataclasses included) finite and in its field's range."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = prefix + f.name
        if dataclasses.is_dataclass(value):
            check_ranges(value, key + ".")
            continue
        _check_value(value, key, f.metadata.get("range"))


def _check_value(value: Any, key: str, rng: Range | None) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _check_value(v, f"{key}.{k}", rng)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_value(v, f"{key}[{i}]", rng)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number, got {value}")
        if rng is not None and not rng.contains(value):
            raise ConfigError(f"{key} must be {rng}, got {value:g}")


def validate(cfg: Config) -> None:
    """Ranges and shapes of every value: what needs no registry to know."""
    check_ranges(cfg)
    for key in ("skip_widths", "up_widths"):
        w = getattr(cfg.model, key)
        if len(w) != 5:
            raise ConfigError(f"model.{key} must list 5 positive widths, got {w}")
    if isinstance(cfg.data.size, list) and len(cfg.data.size) != 2:
        raise ConfigError(f"data.size must be an int or [height, width], got {cfg.data.size}")
    if len(cfg.optim.betas) != 2:
        raise ConfigError(f"optim.betas must list 2 numbers, got {cfg.optim.betas}")
    if not DEVICE.fullmatch(cfg.train.device):
        raise ConfigError(f"train.device: {cfg.train.device!r} is not valid; valid: auto, cpu, cuda, cuda:N, mps")
    if cfg.eval.select_metric is not None and "/" not in cfg.eval.select_metric:
        raise ConfigError("eval.select_metric must look like task/metric, e.g. semseg/mIoU")


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def to_yaml(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


__all__ = [
    "Config", "DataConfig", "EvalConfig", "LossConfig", "ModelConfig", "OptimConfig", "Range", "TrainConfig",
    "apply_overrides", "check_ranges", "coerce", "from_dict", "load_config", "migrate", "option", "to_dict",
    "to_yaml", "validate", "yaml_load",
]
