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

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, get_type_hints

import yaml

from tsn.errors import ConfigError
from tsn.schema import POSITIVE, check_ranges, from_dict, merge, migrate, option, strip_markers



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
        merged = merge(merged, load_yaml_with_bases(p.parent / b, _seen + (p,)))
    return merge(merged, data)


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
    data = merge({}, migrate(Config, data))
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
        node[keys[-1]] = merge(node.get(keys[-1]), value)
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, data: dict | None = None) -> Config:
    """Load, override, parse and check a config (keys, types, ranges; not names)."""
    raw = load_yaml_with_bases(path) if path is not None else migrate(Config, dict(data or {}))
    raw = strip_markers(apply_overrides(raw, overrides or []))
    cfg = from_dict(Config, raw)
    if not cfg.name and path is not None:
        cfg.name = Path(path).stem
    validate(cfg)
    return cfg


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
    "Config", "DataConfig", "EvalConfig", "LossConfig", "ModelConfig", "OptimConfig", "TrainConfig",
    "apply_overrides", "load_config", "to_dict", "to_yaml", "validate", "yaml_load",
]
