"""``build_model(cfg, task_channels)``: every model is built by name from one registry."""

from __future__ import annotations

from collections.abc import Callable

from tsn.codes import build_codebook
from tsn.config import ModelConfig
from tsn.errors import ConfigError
from tsn.models.base import MultiTaskModel
from tsn.models.baselines import MultiDecoderNet, RCMNet, SingleTaskNet, TaskNormNet
from tsn.models.decoders import UNetDecoder
from tsn.models.encoders import build_encoder
from tsn.models.heads import TaskHeads
from tsn.models.tsn import TaskSwitchingNet
from tsn.nn.embedding import TaskEmbedding
from tsn.registry import Registry

Builder = Callable[[ModelConfig, dict[str, int]], MultiTaskModel]
MODELS: Registry[Builder] = Registry("model")


def _encoder(cfg: ModelConfig):
    return build_encoder(cfg.encoder, cfg.pretrained, cfg.encoder_width, cfg.encoder_norm)


def _decoder(cfg: ModelConfig, enc_channels, heads: TaskHeads, norm: str, n_tasks: int, default_act: str, **opts):
    return UNetDecoder(enc_channels, heads.width, norm, n_tasks, cfg.skip_widths, cfg.up_widths,
                       act=cfg.act or default_act, **opts)


@MODELS.register("tsn")
def build_tsn(cfg: ModelConfig, task_channels: dict[str, int]) -> TaskSwitchingNet:
    tasks = list(task_channels)
    enc = _encoder(cfg)
    codes = build_codebook(tasks, cfg.code.kind, cfg.code.dim, cfg.code.seed, cfg.code.path, cfg.code.learnable)
    emb = TaskEmbedding(cfg.code.dim, cfg.embedding.n_fc, cfg.embedding.width, cfg.embedding.equalized)
    heads = TaskHeads(cfg.head, task_channels, cfg.head_width)
    dec = _decoder(cfg, enc.channels, heads, "adain", len(tasks), "leaky_relu",
                   latent_dim=emb.out_dim, equalized=cfg.embedding.equalized)
    return TaskSwitchingNet(task_channels, enc, codes, emb, dec, heads)


def _task_norm(norm: str) -> Builder:
    def build(cfg: ModelConfig, task_channels: dict[str, int]) -> TaskNormNet:
        enc = _encoder(cfg)
        heads = TaskHeads(cfg.head, task_channels, cfg.head_width)
        dec = _decoder(cfg, enc.channels, heads, norm, len(task_channels), "leaky_relu", init_std=cfg.norm_init_std)
        return TaskNormNet(task_channels, enc, dec, heads)

    return build


MODELS.register("task_in")(_task_norm("task_in"))
MODELS.register("task_bn")(_task_norm("task_bn"))


def _per_task_decoders(cfg: ModelConfig, task_channels: dict[str, int], enc_channels):
    heads = {t: TaskHeads(cfg.head, {t: c}, cfg.head_width) for t, c in task_channels.items()}
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


def build_model(cfg: ModelConfig, task_channels: dict[str, int]) -> MultiTaskModel:
    """Build ``cfg.name`` for the given tasks (name -> output channels). Task
    names are free here, so new tasks need no registration to be modelled."""
    if not task_channels:
        raise ConfigError("a model needs at least one task")
    for t, c in task_channels.items():
        if c < 1:
            raise ConfigError(f"task {t!r} needs at least one output channel, got {c}")
    return MODELS.get(cfg.name)(cfg, dict(task_channels))


def list_models() -> list[str]:
    return MODELS.names()


def task_channels_for(tasks: list[str], dataset: str) -> dict[str, int]:
    """Output channels per task: the dataset's class counts, else the task's default."""
    from tsn.data import dataset_info
    from tsn.tasks import get_task

    info = dataset_info(dataset)
    return {t: int(info.num_classes.get(t, get_task(t).channels)) for t in tasks}
