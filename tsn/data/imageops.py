"""Label-map image operations the community does with OpenCV and scikit-image,
written with numpy/scipy so that neither is a dependency.

- :func:`laplacian` equals ``cv2.Laplacian(x, cv2.CV_64F)`` (3x3 kernel
  [[0,1,0],[1,-4,1],[0,1,0]], border reflect-101);
- :func:`thin` is the two-subiteration parallel thinning of Guo and Hall
  (1989), the algorithm behind ``skimage.morphology.thin``;
- :func:`label_map_edges` is PASCAL-Context's edge ground truth: thinned
  non-zero Laplacian of the label map.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

_LAPLACE = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float64)
# Neighbour bit weights: bit 0 east, then counter-clockwise (NE, N, NW, W, SW, S, SE).
_NEIGHBOUR_BITS = np.array([[8, 4, 2], [16, 0, 1], [32, 64, 128]], np.uint8)


def laplacian(x: np.ndarray) -> np.ndarray:
    return ndimage.correlate(x.astype(np.float64), _LAPLACE, mode="mirror")


def _thin_tables() -> tuple[np.ndarray, np.ndarray]:
    """Deletion tables of the two subiterations, indexed by the 8-neighbour code."""
    first = np.zeros(256, bool)
    second = np.zeros(256, bool)
    for code in range(256):
        x = [(code >> i) & 1 for i in range(8)]  # x[0] = east, counter-clockwise
        # G1: exactly one 8-connected run of foreground around the pixel (crossing number 1)
        crossings = sum(1 for i in (0, 2, 4, 6) if not x[i] and (x[i + 1] or x[(i + 2) % 8]))
        # G2: 2 <= min(n1, n2) <= 3 (end points and isolated pixels are kept)
        n1 = sum(1 for k in (1, 3, 5, 7) if x[k - 1] or x[k])
        n2 = sum(1 for k in (1, 3, 5, 7) if x[k] or x[(k + 1) % 8])
        g12 = crossings == 1 and 2 <= min(n1, n2) <= 3
        # G3 / G3': remove only from the south-east (first) or north-west (second) side
        g3 = not ((x[1] or x[2] or not x[7]) and x[0])
        g3p = not ((x[5] or x[6] or not x[3]) and x[4])
        first[code] = g12 and g3
        second[code] = g12 and g3p
    return first, second


_TABLES = _thin_tables()


def thin(mask: np.ndarray, max_iter: int | None = None) -> np.ndarray:
    """Skeletonise a binary mask to one-pixel-wide, 8-connected lines."""
    skel = np.asarray(mask, bool).astype(np.uint8)
    n = 0
    while max_iter is None or n < max_iter:
        before = int(skel.sum())
        for table in _TABLES:
            code = ndimage.correlate(skel, _NEIGHBOUR_BITS, mode="constant")
            skel[table[code] & (skel == 1)] = 0
        n += 1
        if int(skel.sum()) == before:
            break
    return skel.astype(bool)


def label_map_edges(label_map: np.ndarray) -> np.ndarray:
    """PASCAL-Context edges: thinned non-zero Laplacian of the label map, float32 {0,1}."""
    return thin(np.abs(laplacian(label_map)) > 0).astype(np.float32)
