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


def main() -> int:
    for name, version in versions().items():
        print(f"{name} {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
