"""Run logging: a plain text log, TensorBoard scalars and images, and
console output; only rank 0 writes."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np


class RunLogger:
    def __init__(self, out_dir: Path | None, enabled: bool = True, quiet: bool | None = None) -> None:
        self.enabled = enabled and out_dir is not None
        self.quiet = bool(os.environ.get("TSN_QUIET")) if quiet is None else quiet
        self._file = None
        self._tb = None
        if self.enabled:
            assert out_dir is not None
            out_dir.mkdir(parents=True, exist_ok=True)
            self._file = open(out_dir / "log.txt", "a", buffering=1)
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(out_dir / "tb"))

    def info(self, msg: str) -> None:
        if not self.enabled and self._file is None and self.quiet:
            return
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        if self._file is not None:
            self._file.write(line + "\n")
        if not self.quiet and (self.enabled or self._file is None):
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
