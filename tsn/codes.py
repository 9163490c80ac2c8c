"""Task codes v_t: the per-task condition vectors that select a task.

The paper uses binary block ("orthogonal") codes or fixed Gaussian codes;
this module also offers one-hot codes, codes loaded from a file, and
learnable codes. A :class:`Codebook` maps task names to codes and can grow
by one task at a time, which is how a task is added to a trained network.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from tsn.errors import ConfigError
from tsn.registry import Registry

CODES: Registry = Registry("task code")


@CODES.register("orthogonal")
def orthogonal_codes(n_tasks: int, dim: int, **_: object) -> Tensor:
    """Binary block codes: task i owns ones on dims [i*b, (i+1)*b), b = dim // n_tasks."""
    if dim < n_tasks:
        raise ConfigError(f"orthogonal codes need dim >= number of tasks, got dim={dim} < {n_tasks}")
    block = dim // n_tasks
    codes = torch.zeros(n_tasks, dim)
    for i in range(n_tasks):
        codes[i, i * block : (i + 1) * block] = 1.0
    return codes


@CODES.register("onehot")
def onehot_codes(n_tasks: int, dim: int, **_: object) -> Tensor:
    """A single one per task (dims beyond n_tasks stay zero)."""
    if dim < n_tasks:
        raise ConfigError(f"one-hot codes need dim >= number of tasks, got dim={dim} < {n_tasks}")
    return torch.eye(n_tasks, dim)


@CODES.register("gaussian")
def gaussian_codes(n_tasks: int, dim: int, seed: int = 0, **_: object) -> Tensor:
    """Fixed N(0, 1) codes drawn from their own seeded generator."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n_tasks, dim, generator=g)


@CODES.register("file")
def file_codes(n_tasks: int, dim: int, path: str | None = None, **_: object) -> Tensor:
    """Codes from a ``.npy`` or ``.pt`` file holding a [n_tasks, dim] array."""
    if not path:
        raise ConfigError("model.options.tsn.code.path must name a .npy or .pt file when model.options.tsn.code.kind is 'file'")
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"task code file not found: {p}")
    if p.suffix == ".npy":
        codes = torch.from_numpy(np.load(p)).float()
    elif p.suffix in (".pt", ".pth"):
        codes = torch.as_tensor(torch.load(p, map_location="cpu", weights_only=True)).float()
    else:
        raise ConfigError(f"task code file {p} must end in .npy or .pt")
    if tuple(codes.shape) != (n_tasks, dim):
        raise ConfigError(f"task code file {p} holds shape {tuple(codes.shape)}, expected ({n_tasks}, {dim})")
    return codes


def make_codes(kind: str, n_tasks: int, dim: int, **opts: object) -> Tensor:
    return CODES.get(kind)(n_tasks, dim, **opts)


class Codebook(nn.Module):
    """Task name -> code. Fixed codes are buffers (not parameters, as in the
    paper's count); learnable ones are parameters."""

    def __init__(self, tasks: list[str], codes: Tensor, learnable: bool = False) -> None:
        super().__init__()
        if codes.ndim != 2 or codes.shape[0] != len(tasks):
            raise ConfigError(f"codes of shape {tuple(codes.shape)} do not fit {len(tasks)} tasks")
        self.dim = int(codes.shape[1])
        self.tasks: list[str] = []
        for name, code in zip(tasks, codes):
            self.add_task(name, code, learnable=learnable)

    def add_task(self, name: str, code: Tensor | None = None, learnable: bool = False, seed: int = 0) -> Tensor:
        """Register a new task. Without ``code``, draw one orthogonal to every
        existing code (a random vector projected on their orthogonal
        complement, scaled to their mean norm); that is possible while the
        number of tasks is below ``dim``."""
        if name in self.tasks:
            raise ConfigError(f"task {name!r} already has a code")
        if code is None:
            code = self._complement_code(seed)
        code = torch.as_tensor(code, dtype=torch.float32).reshape(-1)
        if code.numel() != self.dim:
            raise ConfigError(f"code for {name!r} has {code.numel()} entries, expected {self.dim}")
        code = code.clone()
        if learnable:
            self.register_parameter(f"code_{name}", nn.Parameter(code))
        else:
            self.register_buffer(f"code_{name}", code)
        self.tasks.append(name)
        return code

    def _complement_code(self, seed: int) -> Tensor:
        g = torch.Generator().manual_seed(seed)
        v = torch.randn(self.dim, generator=g)
        if not self.tasks:
            return v
        existing = self.table().detach()
        if len(self.tasks) >= self.dim:
            raise ConfigError(f"cannot draw a code orthogonal to {len(self.tasks)} codes in {self.dim} dims; pass one")
        q, _ = torch.linalg.qr(existing.T)  # orthonormal basis of the span of existing codes
        v = v - q @ (q.T @ v)
        return v / v.norm() * existing.norm(dim=1).mean()

    def code(self, task: str) -> Tensor:
        if task not in self.tasks:
            raise ConfigError(f"no code for task {task!r}; known: {', '.join(self.tasks)}")
        return getattr(self, f"code_{task}")

    def table(self, tasks: list[str] | None = None) -> Tensor:
        """Codes stacked in the order of ``tasks`` (default: registration order)."""
        return torch.stack([self.code(t) for t in (tasks or self.tasks)])


def build_codebook(
    tasks: list[str], kind: str = "orthogonal", dim: int = 100, seed: int = 0,
    path: str | None = None, learnable: bool = False,
) -> Codebook:
    return Codebook(tasks, make_codes(kind, len(tasks), dim, seed=seed, path=path), learnable=learnable)


def cosine_similarity_matrix(vectors: Tensor) -> Tensor:
    """Pairwise cosine similarity of the rows of ``vectors`` ([T, d] -> [T, T])."""
    v = vectors / vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return v @ v.T


__all__ = ["CODES", "Codebook", "build_codebook", "make_codes", "cosine_similarity_matrix"]
