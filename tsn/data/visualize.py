"""Colour any label map or prediction as a uint8 HxWx3 picture.

Used by the preview and by evaluation's saved predictions, so labels and
outputs of the same task always look the same: class maps use the VOC
palette (255 = cream), binary maps grey (255 = dark red), normals the usual
(n+1)/2 RGB code (invalid = black), depth a magma ramp (invalid = black).
"""

from __future__ import annotations

import numpy as np
import torch

from tsn.data.base import IMAGENET_MEAN, IMAGENET_STD

IGNORE_RGB = {"class": (224, 224, 192), "binary": (120, 0, 0)}


def voc_palette(n: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map (bit-interleaved), so class ids look familiar."""
    pal = np.zeros((n, 3), np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


_PALETTE = voc_palette()


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    return np.asarray(x)


def denormalize(image) -> np.ndarray:
    """ImageNet-normalised [3,H,W] -> uint8 HxWx3."""
    x = _np(image).astype(np.float32)
    x = x * np.array(IMAGENET_STD, np.float32)[:, None, None] + np.array(IMAGENET_MEAN, np.float32)[:, None, None]
    return (np.clip(x, 0, 1).transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)


def _depth_ramp(d: np.ndarray, vmax: float | None) -> np.ndarray:
    from matplotlib import colormaps

    valid = d > 0
    vmax = vmax or (float(d[valid].max()) if valid.any() else 1.0)
    rgb = colormaps["magma"](np.clip(d / max(vmax, 1e-6), 0, 1))[..., :3]
    rgb = (rgb * 255 + 0.5).astype(np.uint8)
    rgb[~valid] = 0
    return rgb


def colorize(task: str, x, normalized: bool = True, depth_max: float | None = None) -> np.ndarray:
    """Picture of one sample's ``task`` map: a label or a raw prediction (logits are argmaxed)."""
    a = _np(x)
    if task == "image":
        if normalized:
            return denormalize(a)
        return (np.clip(a.transpose(1, 2, 0), 0, 1) * 255 + 0.5).astype(np.uint8)
    if task in ("semseg", "parts"):
        if a.ndim == 3 and a.shape[0] > 1:  # logits
            a = a.argmax(0)
        a = a.reshape(a.shape[-2:]).astype(np.int64)
        rgb = _PALETTE[np.clip(a, 0, 255)]
        rgb[a == 255] = IGNORE_RGB["class"]
        return rgb
    if task in ("edge", "sal"):
        a = a.reshape(a.shape[-2:]).astype(np.float32)
        ignore = a == 255
        g = (np.clip(np.where(ignore, 0, a), 0, 1) * 255 + 0.5).astype(np.uint8)
        rgb = np.repeat(g[..., None], 3, -1)
        rgb[ignore] = IGNORE_RGB["binary"]
        return rgb
    if task == "normals":
        n = a.astype(np.float32)
        norm = np.sqrt((n**2).sum(0))
        valid = norm > 1e-6
        n = n / np.maximum(norm, 1e-6)
        rgb = ((n.transpose(1, 2, 0) + 1) / 2 * 255 + 0.5).clip(0, 255).astype(np.uint8)
        rgb[~valid] = 0
        return rgb
    if task == "depth":
        return _depth_ramp(a.reshape(a.shape[-2:]).astype(np.float32), depth_max)
    raise ValueError(f"no colouring for task {task!r}")
