"""What a decoder row is conditioned on.

A stacked decoder batch holds T blocks of B rows, block i decoding task
``task_ids[i*B]``. Normalisations read either the per-row latent (AdaIN) or
the per-row task index (task-specific IN/BN).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Condition:
    task_ids: Tensor  # long [N]: index of each row's task in the model's task list
    blocks: list[tuple[int, slice]]  # contiguous (task index, rows) blocks
    latent: Tensor | None = None  # [N, d] task latents l_t (TSN only)

    @staticmethod
    def stacked(task_indices: list[int], batch: int, latents: Tensor | None = None, device=None) -> "Condition":
        """Rows ordered task-major: ``len(task_indices)`` blocks of ``batch`` rows.

        ``latents`` is [T, d] (one row per task) or [T*batch, d] (per row, e.g. a
        user-supplied code per sample)."""
        ids = torch.tensor(task_indices, device=device).repeat_interleave(batch)
        blocks = [(t, slice(i * batch, (i + 1) * batch)) for i, t in enumerate(task_indices)]
        if latents is not None and latents.shape[0] == len(task_indices) and batch != 1:
            latents = latents.repeat_interleave(batch, dim=0)
        return Condition(ids, blocks, latents)

    @property
    def n_rows(self) -> int:
        return int(self.task_ids.shape[0])
