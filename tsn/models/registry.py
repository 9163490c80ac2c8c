"""``build_model(cfg, task_channels)``: every model is built by name from one registry.

A builder is ``fn(cfg: ModelConfig, task_channels, *, option=default, ...)``:
its keyword-only parameters are its model-specific options, given in the
config under ``model.options.<name>`` and checked against the signature
(:func:`tsn.registry.keyword_options`), so TSN's ``code`` and ``embedding``
sit on TSN alone. Adding a model is one registered function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tsn.codes import CODES, build_codebook
from tsn.config import ModelConfig
from tsn.schema import option
from tsn.errors import ConfigError
from tsn.models.base import MultiTaskModel
from tsn.models.baselines import MultiDecoderNet, RCMNet, SingleTaskNet, TaskNormNet
from tsn.models.decoders import UNetDecoder
from tsn.models.encoders import build_encoder
from tsn.models.encoders import ENCODERS
from tsn.models.heads import HEAD_KINDS, TaskHeads
from tsn.models.tsn import TaskSwitchingNet
from tsn.nn.blocks import ACTIVATIONS
from tsn.nn.embedding import TaskEmbedding
from tsn.registry import Registry, keyword_options

Builder = Callable[..., MultiTaskModel]
MODELS: Registry[Builder] = Registry("model")


@dataclass
class CodeConfig:
    """TSN's task codes (``model.options.tsn.code``)."""

    kind: str = "orthogonal"  # orthogonal | onehot | gaussian | file
    dim: int = option(100, ge=1)
    seed: int = option(0, ge=0)
    path: str | None = None
    learnable: bool = False


@dataclass
class EmbeddingConfig:
    """TSN's code embedding MLP (``model.options.tsn.embedding``)."""

    n_fc: int = option(8, ge=0)
    width: int | None = option(None, ge=1)  # None: the code dimension
    equalized: bool = True


def _encoder(cfg: ModelConfig):
    return build_encoder(cfg.encoder, cfg.pretrained, cfg.encoder_width, cfg.encoder_norm)


def _decoder(cfg: ModelConfig, enc_channels, heads: TaskHeads, norm: str, n_tasks: int, default_act: str, **opts):
    return UNetDecoder(enc_channels, heads.width, norm, n_tasks, cfg.skip_widths, cfg.up_widths,
                       act=cfg.act or default_act, **opts)


@MODELS.register("tsn")
def build_tsn(cfg: ModelConfig, task_channels: dict[str, int], *, code: CodeConfig = CodeConfig(),
              embedding: EmbeddingConfig = EmbeddingConfig()) -> TaskSwitchingNet:
    tasks = list(task_channels)
    CODES.get(code.kind, "model.options.tsn.code.kind")
    enc = _encoder(cfg)
    codes = build_codebook(tasks, code.kind, code.dim, code.seed, code.path, code.learnable)
    emb = TaskEmbedding(code.dim, embedding.n_fc, embedding.width, embedding.equalized)
    heads = TaskHeads.from_config(cfg, task_channels)
    dec = _decoder(cfg, enc.channels, heads, "adain", len(tasks), "leaky_relu",
                   latent_dim=emb.out_dim, equalized=embedding.equalized)
    return TaskSwitchingNet(task_channels, enc, codes, emb, dec, heads)


def _task_norm(norm: str) -> Builder:
    def build(cfg: ModelConfig, task_channels: dict[str, int]) -> TaskNormNet:
        enc = _encoder(cfg)
        heads = TaskHeads.from_config(cfg, task_channels)
        dec = _decoder(cfg, enc.channels, heads, norm, len(task_channels), "leaky_relu", init_std=cfg.norm_init_std)
        return TaskNormNet(task_channels, enc, dec, heads)

    return build


MODELS.register("task_in")(_task_norm("task_in"))
MODELS.register("task_bn")(_task_norm("task_bn"))


def _per_task_decoders(cfg: ModelConfig, task_channels: dict[str, int], enc_channels):
    heads = {t: TaskHeads.from_config(cfg, {t: c}) for t, c in task_channels.items()}
    decs = {t: _decoder(cfg, enc_channels, heads[t], "in", 1, "relu") for t in task_channels}
    return decs, heads


@MODELS.register("multi_decoder")
def build_multi_decoder(cfg: ModelConfig, task_channels: dict[str, int]) -> MultiDecoderNet:
    enc = _encoder(cfg)
    return MultiDecoderNet(task_channels, enc, *_per_task_decoders(cfg, task_channels, enc.channels))


@MODELS.register("single_task")
def build_single_task(cfg: ModelConfig, task_channels: dict[str, int]) -> SingleTaskNet:
    encs = {t: _encoder(cfg) for t in task_channels}
    enc_channels = next(iter(encs.values())).channels
    return SingleTaskNet(task_channels, encs, *_per_task_decoders(cfg, task_channels, enc_channels))


@MODELS.register("rcm")
def build_rcm(cfg: ModelConfig, task_channels: dict[str, int]) -> RCMNet:
    enc = _encoder(cfg)
    return RCMNet(task_channels, enc, *_per_task_decoders(cfg, task_channels, enc.channels))


def model_options(cfg: ModelConfig, name: str | None = None) -> dict[str, Any]:
    """Model ``name``'s (default: ``cfg.name``'s) options, checked, with defaults filled in."""
    name = cfg.name if name is None else name
    builder = MODELS.get(name, "model.name" if name == cfg.name else f"model.options.{name}")
    return keyword_options(builder, cfg.options.get(name), f"model.options.{name}", owner=f"model {name!r}")


def check_model_config(cfg: ModelConfig) -> None:
    """Every name and model option of ``cfg``, checked without building anything."""
    MODELS.get(cfg.name, "model.name")
    ENCODERS.get(cfg.encoder, "model.encoder")
    if cfg.head not in HEAD_KINDS:
        raise ConfigError(f"model.head: {cfg.head!r} is not valid; valid: {', '.join(HEAD_KINDS)}")
    if cfg.act is not None and cfg.act not in ACTIVATIONS:
        raise ConfigError(f"model.act: {cfg.act!r} is not valid; valid: {', '.join(ACTIVATIONS)}")
    for name in cfg.options:  # options of a model not built here are checked too (a base file may set them)
        opts = model_options(cfg, name)
        if name == "tsn":
            CODES.get(opts["code"].kind, "model.options.tsn.code.kind")


def build_model(cfg: ModelConfig, task_channels: dict[str, int]) -> MultiTaskModel:
    """Build ``cfg.name`` for the given tasks (name -> output channels). Task
    names are free here, so new tasks need no registration to be modelled."""
    if not task_channels:
        raise ConfigError("a model needs at least one task")
    for t, c in task_channels.items():
        if c < 1:
            raise ConfigError(f"task {t!r} needs at least one output channel, got {c}")
    builder = MODELS.get(cfg.name, "model.name")
    model = builder(cfg, dict(task_channels), **model_options(cfg))
    if cfg.norm_init_std and not has_task_norms(model):  # a silently ignored option would misreport a run
        raise ConfigError(f"model.norm_init_std={cfg.norm_init_std} acts on task-specific IN/BN layers, and model "
                          f"{cfg.name!r} has none; use it with task_in or task_bn, or leave it at 0")
    return model


def has_task_norms(model) -> bool:
    """Whether ``model`` holds per-task affines (task_in / task_bn), which
    model.norm_init_std and optim.norm_lr act on."""
    from tsn.nn.norms import TaskBN, TaskIN

    return any(isinstance(m, (TaskIN, TaskBN)) for m in model.modules())


def list_models() -> list[str]:
    return MODELS.names()


def task_channels_for(tasks: list[str], dataset: str) -> dict[str, int]:
    """Output channels per task: the dataset's class counts, else the task's default."""
    from tsn.data import dataset_info
    from tsn.tasks import get_task

    info = dataset_info(dataset)
    return {t: int(info.num_classes.get(t, get_task(t).channels)) for t in tasks}
