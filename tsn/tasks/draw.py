"""The pictures of the four label kinds (uint8 HxWx3), shared by labels and predictions.

Class maps use the VOC palette (255 = cream), binary maps grey (255 = dark
red), unit vectors the usual (n+1)/2 RGB code, other vector fields their
first two components scaled to [0, 1] in red and green, scalar maps a magma
ramp; an unlabelled pixel of the last three is black.
"""

from __future__ import annotations

import numpy as np

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


def classes(a: np.ndarray) -> np.ndarray:
    if a.ndim == 3 and a.shape[0] > 1:  # logits
        a = a.argmax(0)
    a = a.reshape(a.shape[-2:]).astype(np.int64)
    rgb = _PALETTE[np.clip(a, 0, 255)]
    rgb[a == 255] = IGNORE_RGB["class"]
    return rgb


def binary(a: np.ndarray, no_label: float = 255.0) -> np.ndarray:
    a = a.reshape(a.shape[-2:]).astype(np.float32)
    ignore = a == no_label
    g = (np.clip(np.where(ignore, 0, a), 0, 1) * 255 + 0.5).astype(np.uint8)
    rgb = np.repeat(g[..., None], 3, -1)
    rgb[ignore] = IGNORE_RGB["binary"]
    return rgb


def unit_vectors(a: np.ndarray) -> np.ndarray:
    n = a.astype(np.float32)
    norm = np.sqrt((n**2).sum(0))
    valid = norm > 1e-6
    n = n / np.maximum(norm, 1e-6)
    rgb = ((n.transpose(1, 2, 0) + 1) / 2 * 255 + 0.5).clip(0, 255).astype(np.uint8)
    rgb[~valid] = 0
    return rgb


def vectors(a: np.ndarray, vmax: float | None = None) -> np.ndarray:
    """Any [C,H,W] field: components 0 and 1 to red and green, ``vmax`` (or the largest |v|) = full."""
    v = a.astype(np.float32)
    valid = np.abs(v).sum(0) > 0
    vmax = vmax or (float(np.abs(v).max()) if valid.any() else 1.0)
    rg = np.clip(v[:2] / max(vmax, 1e-6), -1, 1) * 0.5 + 0.5
    rgb = np.zeros((*v.shape[-2:], 3), np.float32)
    rgb[..., : rg.shape[0]] = rg.transpose(1, 2, 0)
    rgb[..., 2] = 0.5
    rgb = (rgb * 255 + 0.5).astype(np.uint8)
    rgb[~valid] = 0
    return rgb


def ramp(a: np.ndarray, vmax: float | None = None) -> np.ndarray:
    from matplotlib import colormaps

    d = a.reshape(a.shape[-2:]).astype(np.float32)
    valid = d > 0
    vmax = vmax or (float(d[valid].max()) if valid.any() else 1.0)
    rgb = colormaps["magma"](np.clip(d / max(vmax, 1e-6), 0, 1))[..., :3]
    rgb = (rgb * 255 + 0.5).astype(np.uint8)
    rgb[~valid] = 0
    return rgb
