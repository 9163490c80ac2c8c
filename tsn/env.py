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


def _cpuinfo() -> dict[str, str]:
    """The first processor's entries of /proc/cpuinfo (Linux; empty elsewhere)."""
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():  # the end of the first processor's block
                    break
                key, _, value = line.partition(":")
                info[key.strip()] = value.strip()
    except OSError:
        pass
    return info


def _cpu_name(info: dict[str, str]) -> str:
    return info.get("model name") or platform.processor() or platform.machine()


def cpu_generation(info: dict[str, str] | None = None) -> str:
    """Family, model and the vector ISA torch's kernels use: a virtual machine may name
    every generation "AMD EPYC", and two generations sum in another order."""
    import torch

    info = _cpuinfo() if info is None else info
    fields = (("family", "cpu family"), ("model", "model"))
    ids = [f"{name} {info[key]}" for name, key in fields if info.get(key)]
    return ", ".join(ids + [torch.backends.cpu.get_cpu_capability()])


def run_environment(device: str = "cpu") -> dict[str, object]:
    """What a training record keeps of where it ran, so that its wall time and
    numbers can be compared across machines and library versions."""
    import torch

    cpu = _cpuinfo()
    if device.startswith("cuda") and torch.cuda.is_available():
        where = torch.cuda.get_device_name()
    else:
        where = _cpu_name(cpu)
    return {"code": code_version(), "python": platform.python_version(), "torch": torch.__version__,
            "device": where, "cpu": cpu_generation(cpu), "threads": torch.get_num_threads()}


def main() -> int:
    for name, version in versions().items():
        print(f"{name} {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
