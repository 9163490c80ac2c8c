"""Deep supervision: the losses of auxiliary predictions (PAD-Net's initial
predictions, MTI-Net's per-scale ones) folded into their task's loss.

A model returns them in training mode under ``"<task>@<tag>"`` keys
(:data:`tsn.models.mtl_blocks.AUX_SEP`) at their own resolution. Each is
resized to its task's label (bilinear, as the references' ``PADNetLoss`` /
``MTINetLoss`` do before the loss) and scored with that task's own loss;
the result is added, with weight 1, to the task's loss:
L_t = loss_t(final) + sum_tag loss_t(aux_tag). The weighting therefore
sees one loss per task and multiplies the sum by the task's weight, which
is the references' total (they weight each deep-supervision term with its
task's weight). For predictions without aux keys (every other model, and
every model in eval mode) the wrapper returns the wrapped loss's output
unchanged.
"""

from __future__ import annotations

from torch import Tensor, nn

from tsn.models.decoders import upsample
from tsn.models.mtl_blocks import AUX_SEP


class DeepSupervisionLoss(nn.Module):
    def __init__(self, base: nn.Module) -> None:
        super().__init__()
        self.base = base

    def forward(self, preds: dict[str, Tensor], targets: dict[str, Tensor]) -> dict[str, Tensor]:
        main = {k: v for k, v in preds.items() if AUX_SEP not in k}
        losses = self.base(main, targets)
        for key, pred in preds.items():
            if AUX_SEP not in key:
                continue
            task = key.split(AUX_SEP, 1)[0]
            target = targets.get(task)
            size = target.shape[-2:] if target is not None else main[task].shape[-2:]
            aux = self.base({task: upsample(pred, size)}, {task: target} if target is not None else {})[task]
            losses[task] = losses[task] + aux if task in losses else aux
        return losses


__all__ = ["DeepSupervisionLoss"]
