"""What every multi-task model shares: the task list, the forward signature
and the output resolution.

``model(x, task="semseg")`` returns one tensor; ``model(x, tasks=[...])``
(or ``model(x)`` for all tasks) returns a dict keyed by task. Outputs are at
the input's full resolution: logits for edge/semseg/parts/sal, unnormalised
vectors for normals, metres for depth.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from tsn.errors import ConfigError


class MultiTaskModel(nn.Module):
    def __init__(self, task_channels: dict[str, int]) -> None:
        super().__init__()
        self.task_channels: dict[str, int] = dict(task_channels)

    @property
    def tasks(self) -> list[str]:
        return list(self.task_channels)

    def _check(self, tasks: Sequence[str]) -> list[str]:
        for t in tasks:
            if t not in self.task_channels:
                raise ConfigError(f"this model has no task {t!r}; it has: {', '.join(self.task_channels)}")
        return list(tasks)

    def forward(self, x: Tensor, task: str | None = None, tasks: Sequence[str] | None = None,
                code: Tensor | None = None) -> Tensor | dict[str, Tensor]:
        if task is not None and tasks is not None:
            raise ConfigError("pass either task= or tasks=, not both")
        if code is not None and task is None:
            raise ConfigError("code= needs task= (the task whose output head to use)")
        names = self._check([task] if task is not None else (tasks if tasks is not None else self.tasks))
        out = self.forward_tasks(x, names, code=code)
        return out[task] if task is not None else out

    def forward_tasks(self, x: Tensor, tasks: list[str], code: Tensor | None = None) -> dict[str, Tensor]:
        raise NotImplementedError

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters shared by all tasks (TAG's look-ahead acts on these)."""
        return [p for n, p in self.named_parameters() if n.startswith("encoder.") and p.requires_grad]

    def gradnorm_parameters(self) -> list[nn.Parameter]:
        """The last layer shared by all tasks, whose gradient norms GradNorm balances."""
        if hasattr(self, "decoder"):  # one shared decoder: its output convolution
            return [self.decoder.out_conv.weight]
        enc = getattr(self, "encoder", None)
        if enc is None:
            raise ConfigError(f"{type(self).__name__} shares no layer between tasks; gradnorm cannot be used with it")
        convs = [m.weight for m in enc.layer4.modules() if isinstance(m, nn.Conv2d) and m.weight.requires_grad]
        if not convs:
            raise ConfigError(f"{type(self).__name__} has no trainable shared layer; gradnorm cannot be used with it")
        return [convs[-1]]
