"""Run logging: a plain text log, TensorBoard scalars and images, and
console output; only rank 0 writes."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np


class RunLogger:
    """``main`` is False on every process but rank 0: those write and print nothing."""

    def __init__(self, out_dir: Path | None, main: bool = True, quiet: bool | None = None) -> None:
        self.main = main
        self.quiet = bool(os.environ.get("TSN_QUIET")) if quiet is None else quiet
        self._file = None
        self._tb = None
        if main and out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            self._file = open(out_dir / "log.txt", "a", buffering=1)
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(out_dir / "tb"))

    def info(self, msg: str, console: bool = True) -> None:
        """``console=False``: log.txt only (for a line the command prints itself as ``error: ...``)."""
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        if self._file is not None:
            self._file.write(line + "\n")
        if console and self.main and not self.quiet:
            print(line, file=sys.stderr, flush=True)

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self._tb is not None:
            for k, v in values.items():
                self._tb.add_scalar(k, v, step)

    def image(self, tag: str, img: np.ndarray, step: int) -> None:
        if self._tb is not None:
            self._tb.add_image(tag, img, step, dataformats="HWC")

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._file is not None:
            self._file.close()
