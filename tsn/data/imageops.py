"""Label-map image operations the community does with OpenCV and scikit-image,
written with numpy/scipy so that neither is a dependency.

- :func:`laplacian` equals ``cv2.Laplacian(x, cv2.CV_64F)`` (3x3 kernel
  [[0,1,0],[1,-4,1],[0,1,0]], border reflect-101);
- :func:`thin` is the edge benchmark's thinning (``tsn.metrics.boundary``:
  the two-subiteration tables of ``bwmorph('thin')``, tested equal to
  ``skimage.morphology.thin``), so ground-truth edges and evaluated
  predictions are thinned by the same code;
- :func:`label_map_edges` is PASCAL-Context's edge ground truth: thinned
  non-zero Laplacian of the label map.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from tsn.metrics.boundary import thin

_LAPLACE = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float64)


def laplacian(x: np.ndarray) -> np.ndarray:
    return ndimage.correlate(x.astype(np.float64), _LAPLACE, mode="mirror")


def label_map_edges(label_map: np.ndarray) -> np.ndarray:
    """PASCAL-Context edges: thinned non-zero Laplacian of the label map, float32 {0,1}."""
    return thin(np.abs(laplacian(label_map)) > 0).astype(np.float32)
