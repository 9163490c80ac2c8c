"""``python -m tsn.env``: the versions this environment runs, one line each.

The README states what the test suite was last run with by pasting this
output, so a failure on another machine can be compared package by package.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata

#: The project's runtime and test dependencies, in the order printed.
PACKAGES = ("torch", "torchvision", "numpy", "scipy", "pyyaml", "pillow", "matplotlib", "tensorboard", "tqdm",
            "numba", "torchjd", "pytest", "scikit-image", "onnx", "onnxruntime")


def versions() -> dict[str, str]:
    """Installed version of Python and of every package in :data:`PACKAGES` ("missing" if absent)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def code_version() -> str | None:
    """``git describe --always --dirty`` of the checkout this package runs
    from (None outside a git checkout, e.g. an installed wheel)."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def _cpuinfo(key: str) -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.split(":", 1)[0].strip() == key:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _cpu_name() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_generation() -> str:
    """Family, model and the vector ISA torch's kernels use: a virtual machine may name
    every generation "AMD EPYC", and two generations sum in another order (their
    5-epoch results differ by about a seed's spread)."""
    import torch

    fields = (("family", "cpu family"), ("model", "model"))  # /proc/cpuinfo's keys (Linux)
    ids = [f"{name} {value}" for name, key in fields if (value := _cpuinfo(key))]
    return ", ".join(ids + [torch.backends.cpu.get_cpu_capability()])


def run_environment(device: str = "cpu") -> dict[str, object]:
    """What a training record keeps of where it ran, so that its wall time and
    numbers can be compared across machines and library versions."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        where = torch.cuda.get_device_name()
    else:
        where = _cpu_name()
    return {"code": code_version(), "python": platform.python_version(), "torch": torch.__version__,
            "device": where, "cpu": cpu_generation(), "threads": torch.get_num_threads()}


def main() -> int:
    for name, version in versions().items():
        print(f"{name} {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
