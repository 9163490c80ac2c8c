"""Task Switching Networks (Sun et al., ICCV 2021) and dense multi-task baselines."""

__version__ = "0.1.0"
