"""Task Switching Networks (Sun et al., ICCV 2021) and dense multi-task baselines."""

__version__ = "0.1.0"

# Lazy, so that ``import tsn`` stays cheap and importing a submodule does not
# pull in the models.
_LAZY = {"load_run": "tsn.runs", "predict": "tsn.inference"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tsn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
