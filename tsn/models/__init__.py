"""Models: TSN, the paper's baselines and the field's comparison
architectures, built by name with ``build_model``."""

from tsn.models.base import MultiTaskModel
from tsn.models.registry import MODELS, build_model, list_models
from tsn.models.tsn import TaskSwitchingNet
from tsn.models import cross_stitch, mtan, mtinet, padnet  # noqa: E402,F401  (register the comparison models)

__all__ = ["MODELS", "MultiTaskModel", "TaskSwitchingNet", "build_model", "list_models"]
