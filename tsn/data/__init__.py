"""Datasets: the embedded scene generator (``synthetic``), PASCAL-Context
(``pascal``), NYUD-v2 (``nyud``) and BSDS500 (``bsds``, boundaries only),
built by name with :func:`build_dataset`.

Samples are dicts keyed by task (see :mod:`tsn.data.base`); batches come from
:func:`collate`. Nothing is downloaded at import time.
"""

from tsn.data.base import (
    DATASETS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    DatasetInfo,
    MultiTaskDataset,
    build_dataset,
    check_dataset_options,
    collate,
    dataset_info,
    invalid_label,
    list_datasets,
)
from tsn.data import synthetic as _synthetic  # noqa: F401  (registers "synthetic")
from tsn.data import pascal as _pascal  # noqa: F401  (registers "pascal")
from tsn.data import nyud as _nyud  # noqa: F401  (registers "nyud")
from tsn.data import bsds as _bsds  # noqa: F401  (registers "bsds")

__all__ = [
    "DATASETS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "DatasetInfo",
    "MultiTaskDataset",
    "build_dataset",
    "check_dataset_options",
    "collate",
    "dataset_info",
    "invalid_label",
    "list_datasets",
]
