"""The paper's baselines, built from the same encoder, decoder and heads.

- task-specific INs / BNs: one shared decoder whose normalisations hold one
  affine pair (and, for BN, statistics) per task; no embedding.
- multi-decoder: a shared encoder and one plain decoder per task.
- single-task: one encoder-decoder per task.
- RCM (Kanakis et al., ECCV 2020): the encoder's filters are shared and
  frozen; each task learns 1x1 "modulator" convolutions after them and its
  own BN, plus a decoder of its own.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from tsn.errors import ConfigError
from tsn.models.base import MultiTaskModel
from tsn.models.decoders import UNetDecoder
from tsn.models.encoders import ResNetEncoder
from tsn.models.heads import TaskHeads
from tsn.nn.condition import Condition


class TaskNormNet(MultiTaskModel):
    """Shared encoder and decoder; the decoder's norms are ``task_in``/``task_bn``."""

    def __init__(self, task_channels: dict[str, int], encoder: ResNetEncoder, decoder: UNetDecoder, heads: TaskHeads) -> None:
        super().__init__(task_channels)
        self.encoder, self.decoder, self.heads = encoder, decoder, heads

    def forward_tasks(self, x: Tensor, tasks: list[str], code: Tensor | None = None) -> dict[str, Tensor]:
        b = x.shape[0]
        cond = Condition.stacked([self.tasks.index(t) for t in tasks], b, device=x.device)
        y = self.decoder(self.encoder(x), cond, x.shape[-2:], repeat=len(tasks))
        # split, not slicing: one backward node that concatenates, where each slice's
        # backward would fill a zero tensor as large as the whole stacked output
        return {t: self.heads(yt, t) for yt, t in zip(y.split(b), tasks)}

    def shared_parameters(self) -> list[nn.Parameter]:
        return [p for p in list(self.encoder.parameters()) + list(self.decoder.parameters()) if p.requires_grad]


def _single(x: Tensor) -> Condition:
    return Condition.stacked([0], x.shape[0], device=x.device)


class MultiDecoderNet(MultiTaskModel):
    def __init__(self, task_channels: dict[str, int], encoder: ResNetEncoder,
                 decoders: dict[str, UNetDecoder], heads: dict[str, TaskHeads]) -> None:
        super().__init__(task_channels)
        self.encoder = encoder
        self.decoders, self.heads = nn.ModuleDict(decoders), nn.ModuleDict(heads)

    def forward_tasks(self, x: Tensor, tasks: list[str], code: Tensor | None = None) -> dict[str, Tensor]:
        feats, cond = self.encoder(x), _single(x)
        return {t: self.heads[t](self.decoders[t](feats, cond, x.shape[-2:]), t) for t in tasks}


class SingleTaskNet(MultiTaskModel):
    """T independent networks; ``model(x, task=t)`` runs only network t."""

    def __init__(self, task_channels: dict[str, int], encoders: dict[str, ResNetEncoder],
                 decoders: dict[str, UNetDecoder], heads: dict[str, TaskHeads]) -> None:
        super().__init__(task_channels)
        self.encoders, self.decoders, self.heads = nn.ModuleDict(encoders), nn.ModuleDict(decoders), nn.ModuleDict(heads)

    def forward_tasks(self, x: Tensor, tasks: list[str], code: Tensor | None = None) -> dict[str, Tensor]:
        cond = _single(x)
        return {t: self.heads[t](self.decoders[t](self.encoders[t](x), cond, x.shape[-2:]), t) for t in tasks}

    def shared_parameters(self) -> list[nn.Parameter]:
        return []

    def gradnorm_parameters(self) -> list[nn.Parameter]:
        raise ConfigError("single_task shares no layer between tasks; gradnorm cannot be used with it")


class ModulatedConv(nn.Module):
    """A frozen shared convolution followed by the active task's 1x1 modulator
    (initialised to the identity, so training starts from the shared filters)."""

    def __init__(self, conv: nn.Conv2d, n_tasks: int, active: Callable[[], int]) -> None:
        super().__init__()
        self.shared = conv
        for p in self.shared.parameters():
            p.requires_grad_(False)
        c = conv.out_channels
        self.modulators = nn.ModuleList(nn.Conv2d(c, c, 1, bias=False) for _ in range(n_tasks))
        for m in self.modulators:
            nn.init.eye_(m.weight.view(c, c))
        self._active = active

    def forward(self, x: Tensor) -> Tensor:
        return self.modulators[self._active()](self.shared(x))


class SwitchedBN(nn.Module):
    """One BatchNorm2d per task, chosen by the active task."""

    def __init__(self, bn: nn.BatchNorm2d, n_tasks: int, active: Callable[[], int]) -> None:
        super().__init__()
        self.bns = nn.ModuleList(nn.BatchNorm2d(bn.num_features) for _ in range(n_tasks))
        for b in self.bns:
            b.load_state_dict(bn.state_dict())
        self._active = active

    def forward(self, x: Tensor) -> Tensor:
        return self.bns[self._active()](x)


class RCMNet(MultiTaskModel):
    """Every k x k convolution of the encoder (k > 1, i.e. the stem and the
    3x3 convolutions, not the 1x1 downsampling projections) is shared and
    frozen and gets a per-task 1x1 modulator; every BN becomes per-task.
    About 1.4M trainable parameters per task on ResNet-18, plus a decoder."""

    def __init__(self, task_channels: dict[str, int], encoder: ResNetEncoder,
                 decoders: dict[str, UNetDecoder], heads: dict[str, TaskHeads]) -> None:
        super().__init__(task_channels)
        self._task = 0
        n = len(task_channels)
        active = lambda: self._task  # noqa: E731
        for parent in list(encoder.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.Conv2d) and child.kernel_size[0] > 1:
                    setattr(parent, name, ModulatedConv(child, n, active))
                elif isinstance(child, nn.BatchNorm2d):
                    setattr(parent, name, SwitchedBN(child, n, active))
        self.encoder = encoder
        self.decoders, self.heads = nn.ModuleDict(decoders), nn.ModuleDict(heads)

    def gradnorm_parameters(self) -> list[nn.Parameter]:
        raise ConfigError("rcm trains no layer shared by all tasks (its shared filters are frozen); use another weighting")

    def forward_tasks(self, x: Tensor, tasks: list[str], code: Tensor | None = None) -> dict[str, Tensor]:
        out, cond = {}, _single(x)
        for t in tasks:
            self._task = self.tasks.index(t)
            out[t] = self.heads[t](self.decoders[t](self.encoder(x), cond, x.shape[-2:]), t)
        return out

    def shared_parameters(self) -> list[nn.Parameter]:
        return []


__all__ = ["MultiDecoderNet", "RCMNet", "SingleTaskNet", "TaskNormNet"]
