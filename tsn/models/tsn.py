"""The Task Switching Network: one encoder, ONE decoder whose convolutions
are conditioned by AdaIN on a task latent l_t = C(v_t)."""

from __future__ import annotations

from torch import Tensor, nn

from tsn.codes import Codebook
from tsn.errors import ConfigError
from tsn.models.base import MultiTaskModel
from tsn.models.decoders import UNetDecoder
from tsn.models.heads import TaskHeads
from tsn.nn.condition import Condition
from tsn.nn.embedding import TaskEmbedding


class TaskSwitchingNet(MultiTaskModel):
    def __init__(self, task_channels: dict[str, int], encoder: nn.Module, codes: Codebook,
                 embedding: TaskEmbedding, decoder: UNetDecoder, heads: TaskHeads) -> None:
        super().__init__(task_channels)
        self.encoder, self.codes, self.embedding, self.decoder, self.heads = encoder, codes, embedding, decoder, heads

    def latents(self, tasks: list[str] | None = None) -> Tensor:
        """The task latents l_t, [T, d] in the order of ``tasks``."""
        return self.embedding(self.codes.table(tasks or self.tasks))

    def forward_tasks(self, x: Tensor, tasks: list[str], code: Tensor | None = None) -> dict[str, Tensor]:
        feats = self.encoder(x)
        b = x.shape[0]
        if code is not None:  # inference with a user-supplied code, one task
            code = code.to(x).reshape(-1, self.codes.dim).expand(b, -1)
            cond = Condition.stacked([self.tasks.index(tasks[0])], b, self.embedding(code))
        else:
            lat = self.latents(tasks)
            cond = Condition.stacked([self.tasks.index(t) for t in tasks], b, lat, device=x.device)
        y = self.decoder(feats, cond, x.shape[-2:], repeat=len(tasks))
        # split, not slicing: one backward node that concatenates, where each slice's
        # backward would fill a zero tensor as large as the whole stacked output
        return {t: self.heads(yt, t) for yt, t in zip(y.split(b), tasks)}

    def add_task(self, name: str, channels: int, code: Tensor | None = None, learnable: bool = True, seed: int = 0) -> None:
        """Add a task to a trained network: a new code (learnable by default)
        and its head; every shared weight is left as it is.

        Guaranteed afterwards: every old task decoded on its own
        (``model(x, task=t)``) gives bit-identical outputs. The stacked
        all-task pass decodes one more task per image, and convolution
        kernels may then sum in another order, so its old outputs agree only
        to float rounding (about 1e-6)."""
        if name in self.task_channels:
            raise ConfigError(f"task {name!r} is already in the model")
        self.codes.add_task(name, code, learnable=learnable, seed=seed)
        self.heads.add_task(name, channels)
        self.task_channels[name] = channels

    def shared_parameters(self) -> list[nn.Parameter]:
        return [p for p in list(self.encoder.parameters()) + list(self.decoder.parameters()) if p.requires_grad]


__all__ = ["TaskSwitchingNet"]
