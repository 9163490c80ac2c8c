"""Progress a person can see where no terminal is: one-line records at a steady interval.

On a terminal the commands draw tqdm bars. Under ``nohup``, a scheduler or CI, stderr is a file
and a bar shows nothing until it closes, so a long epoch or evaluation looked hung (one epoch on a
busy machine printed nothing for 20 minutes). There, :class:`ProgressRecords` writes
``what: done/total steps (pct), images/s, elapsed, ETA`` every ``TSN_PROGRESS_EVERY`` seconds
(default 60) through the caller's ``say`` (the run's logger: console and log.txt).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from tsn.errors import ConfigError

EVERY_ENV = "TSN_PROGRESS_EVERY"
DEFAULT_EVERY = 60.0


def record_interval() -> float:
    """Seconds between records: ``$TSN_PROGRESS_EVERY`` (>= 0; 0 = every step) or 60."""
    raw = os.environ.get(EVERY_ENV)
    if raw is None or raw == "":
        return DEFAULT_EVERY
    try:
        every = float(raw)
    except ValueError:
        every = -1.0
    if not every >= 0:
        raise ConfigError(f"{EVERY_ENV}={raw!r}: give the seconds between progress records, a number >= 0")
    return every


def wants_records() -> bool:
    """True where no terminal shows a bar (stderr redirected)."""
    return not sys.stderr.isatty()


def _hms(seconds: float) -> str:
    s = int(round(max(seconds, 0.0)))
    h, m = divmod(s, 3600)
    m, s = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class ProgressRecords:
    """One line every ``every`` seconds of ``update``s: steps done of ``total``, images/s and the
    time left at the rate measured since this object was made (so a resumed run's ETA counts only
    what it has done itself)."""

    def __init__(self, what: str, total: int, say: Callable[[str], None], done: int = 0, every: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.what, self.total, self.say, self.clock = what, max(int(total), 1), say, clock
        self.every = record_interval() if every is None else float(every)
        self.start = self.last = clock()
        self.done0 = self.done = int(done)
        self.images = 0

    def update(self, done: int, images: int = 0) -> None:
        self.done, self.images = int(done), self.images + int(images)
        now = self.clock()
        if now - self.last >= self.every:
            self.last = now
            self.say(self.line(now))

    def line(self, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        elapsed = now - self.start
        steps = self.done - self.done0
        rate = steps / elapsed if elapsed > 0 else 0.0
        eta = _hms((self.total - self.done) / rate) if rate > 0 else "?"
        return (f"{self.what}: {self.done}/{self.total} steps ({100.0 * self.done / self.total:.1f}%), "
                f"{self.images / elapsed if elapsed > 0 else 0.0:.1f} images/s, elapsed {_hms(elapsed)}, ETA {eta}")
