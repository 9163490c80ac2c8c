"""Atomic file writes: a crash mid-write never leaves a truncated result or
checkpoint behind (write to a temporary file in the same folder, then rename)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def _atomic(path: str | Path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return _atomic(path, lambda f: f.write(text.encode()))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return _atomic(path, lambda f: f.write(data))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_torch_save(path: str | Path, obj: Any) -> Path:
    return _atomic(path, lambda f: torch.save(obj, f))


def check_output_file(path: str | Path, overwrite: bool = False) -> Path:
    """Refuse, before any work, an output file that cannot be written or would replace one the
    user did not ask to replace: one :class:`~tsn.errors.DataError` line naming it."""
    from tsn.errors import DataError

    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder; give a file name")
    if path.exists() and not overwrite:
        raise DataError(f"{path}: exists; pass --overwrite to replace it")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent  # the first existing folder above, where the missing ones will be made
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(f"{path}: cannot write there ({parent} is not a writable folder)")
    return path


def read_torch(path: str | Path, error: type[Exception], what: str, weights_only: bool = False) -> Any:
    """``torch.load`` on the CPU; any unreadable file is the same user error: one line of
    ``error`` naming ``what`` and the file (a truncated download, another format, a folder)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as e:  # noqa: BLE001 - every unreadable file is the same user error
        first = str(e).splitlines()[0] if str(e) else ""
        raise error(f"cannot read {what} {path}: {type(e).__name__}: {first}") from None
