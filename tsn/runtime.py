"""Process-wide CPU settings that matter more than any kernel.

glibc's malloc serves every block above its mmap threshold (at most 32 MiB)
with a fresh ``mmap`` and returns it with ``munmap`` on free, so each large
activation is page-faulted in (the kernel zeroes it page by page) on every
step. A task-stacked decoder batch is 5x larger than one task's, so this hit
the stacked all-task pass hardest: at quarter widths, 128 px, 5 tasks on 2
CPU cores it ran at 27 img/s with the default allocator and 48 img/s with
the settings below (docs/PERFORMANCE.md, docs/perf/cpu_allocator_*.json). Keeping
freed memory in the heap is what jemalloc/tcmalloc (the allocators the
PyTorch CPU tuning guides preload) and PyTorch's own CUDA caching allocator
do; here it is two ``mallopt`` calls, no dependency.

The trainer and ``python -m eval`` call :func:`tune_cpu_allocator` when they
run on the CPU, as do the benchmarks; a notebook or another program may call
it too. ``TSN_CPU_ALLOCATOR=system`` keeps the
allocator as it is. Elsewhere than glibc (macOS, musl) it does nothing.
No kernel choice reads this state (``tsn.nn.ops`` has its own explicit
setting); :func:`cpu_allocator_tuned` is for logs and benchmark records.
"""

from __future__ import annotations

import ctypes
import os

from tsn.errors import ConfigError

ENV = "TSN_CPU_ALLOCATOR"
CHOICES = ("tuned", "system")
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc <malloc.h>
_TRIM_THRESHOLD = 2**31 - 1  # never give the top of the heap back (it would be faulted in again)
_state: bool | None = None


def tune_cpu_allocator() -> bool:
    """Serve large blocks from the heap and keep freed memory there (glibc).

    Idempotent; returns whether the tuned settings are in force. The cost is
    memory: the process keeps its peak heap until it exits, as a caching
    allocator does, and glibc 2.36's aligned allocations leave some freed
    blocks unused (the measured speed and memory: docs/PERFORMANCE.md, "Changes and their
    measured effect"). Raises :class:`ConfigError` on an unknown ``TSN_CPU_ALLOCATOR`` value."""
    global _state
    choice = os.environ.get(ENV, "tuned").strip().lower() or "tuned"
    if choice not in CHOICES:
        raise ConfigError(f"{ENV}={os.environ[ENV]!r} is not valid; use one of: {', '.join(CHOICES)}")
    if _state is not None:
        return _state
    _state = False
    if choice == "tuned":
        try:
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError):  # not glibc-like: nothing to tune
            return False
        mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        # mallopt returns 1 on success; musl's stub returns 0 and changes nothing
        _state = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1
    return _state


def cpu_allocator_tuned() -> bool:
    """Whether :func:`tune_cpu_allocator` has put the tuned settings in force."""
    return bool(_state)


__all__ = ["CHOICES", "ENV", "cpu_allocator_tuned", "tune_cpu_allocator"]
