"""The process-wide CPU allocator settings (tsn/runtime.py)."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys

import pytest

from tsn.errors import ConfigError
from tsn.runtime import ENV, cpu_allocator_tuned, tune_cpu_allocator

GLIBC = sys.platform.startswith("linux") and hasattr(ctypes.CDLL(None), "gnu_get_libc_version")

# A 64 MiB tensor allocated, written and freed again and again; prints the minor
# page faults of the last 8 rounds. (glibc 2.36's aligned allocation leaves a few
# freed blocks unused before it settles, hence the 16 warm-up rounds.)
FAULTS = """
import json, resource, sys, torch
from tsn.runtime import tune_cpu_allocator
tuned = tune_cpu_allocator()
for _ in range(16):
    torch.empty(16 << 20).fill_(1.0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(8):
    torch.empty(16 << 20).fill_(1.0)
print(json.dumps({"tuned": tuned, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def _faults(choice: str) -> dict:
    env = {**os.environ, ENV: choice, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", FAULTS], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="the tuning is glibc's mallopt")
def test_tuned_allocator_stops_page_faulting_large_tensors_in_again():
    pages = (64 << 20) // 4096  # one tensor's pages
    system, tuned = _faults("system"), _faults("tuned")
    assert system["tuned"] is False and tuned["tuned"] is True
    assert system["faults"] >= 8 * pages * 0.9  # a fresh mmap per tensor: every page faulted again
    assert tuned["faults"] < pages  # the freed block is reused from the heap


def test_unknown_allocator_choice_is_one_line_naming_the_valid_ones(monkeypatch):
    monkeypatch.setenv(ENV, "jemalloc")
    with pytest.raises(ConfigError, match=r"TSN_CPU_ALLOCATOR='jemalloc' is not valid; use one of: tuned, system") as e:
        tune_cpu_allocator()
    assert "\n" not in str(e.value)


def test_tuning_is_idempotent_and_reported():
    first = tune_cpu_allocator()
    assert tune_cpu_allocator() is first and cpu_allocator_tuned() is first
    if GLIBC and os.environ.get(ENV, "tuned") == "tuned":
        assert first is True
