"""Colour any label map or prediction as a uint8 HxWx3 picture.

Used by the preview, TensorBoard and evaluation's saved predictions, so labels
and outputs of the same task always look the same: each task draws itself
(its label kind's picture, see :mod:`tsn.tasks.draw`: class maps in the VOC
palette, binary maps grey, normals the (n+1)/2 RGB code, depth a magma ramp).
"""

from __future__ import annotations

import numpy as np
import torch

from tsn.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from tsn.errors import ConfigError
from tsn.tasks import get_task
from tsn.tasks.draw import IGNORE_RGB, voc_palette  # noqa: F401  (re-exported)


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    return np.asarray(x)


def denormalize(image) -> np.ndarray:
    """ImageNet-normalised [3,H,W] -> uint8 HxWx3."""
    x = _np(image).astype(np.float32)
    x = x * np.array(IMAGENET_STD, np.float32)[:, None, None] + np.array(IMAGENET_MEAN, np.float32)[:, None, None]
    return (np.clip(x, 0, 1).transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)


def colorize(task: str, x, normalized: bool = True, vmax: float | None = None, prediction: bool = False,
             depth_max: float | None = None) -> np.ndarray:
    """Picture of one sample's ``task`` map: a label, or with ``prediction`` a raw network output
    (logits are argmaxed / squashed). ``vmax`` fixes the scale of regression maps (e.g. the
    label's, so a prediction is drawn beside it on the same ramp); ``depth_max`` is its old name."""
    if task == "image":
        a = _np(x)
        if normalized:
            return denormalize(a)
        return (np.clip(a.transpose(1, 2, 0), 0, 1) * 255 + 0.5).astype(np.uint8)
    try:
        spec = get_task(task)
    except ConfigError:
        raise ValueError(f"no colouring for task {task!r}") from None
    return spec.draw(_np(x), prediction=prediction, vmax=vmax if vmax is not None else depth_max)
