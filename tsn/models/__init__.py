"""Models: TSN and the paper's baselines, built by name with ``build_model``."""

from tsn.models.base import MultiTaskModel
from tsn.models.registry import MODELS, build_model, list_models
from tsn.models.tsn import TaskSwitchingNet

__all__ = ["MODELS", "MultiTaskModel", "TaskSwitchingNet", "build_model", "list_models"]
