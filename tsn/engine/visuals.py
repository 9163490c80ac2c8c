"""Side-by-side pictures of labels and predictions (TensorBoard, --save-predictions)."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from tsn.data.visualize import colorize


def prediction_panel(batch: dict, preds: dict[str, Tensor], i: int, tasks: list[str]) -> np.ndarray:
    """Top row: the input, then each task's label; bottom row: each task's prediction,
    drawn by its task on the label's scale."""
    image = colorize("image", batch["image"][i])
    h, w = image.shape[:2]
    top, bottom = [image], [np.full_like(image, 255)]
    for t in tasks:
        p = preds[t][i].detach().float().cpu()
        label = batch.get(t)
        vmax = (float(label[i].float().abs().max()) or None) if label is not None else None
        top.append(colorize(t, label[i]) if label is not None else np.zeros_like(image))
        bottom.append(colorize(t, p, vmax=vmax, prediction=True))
    gap = np.full((h, 2, 3), 255, np.uint8)
    row = lambda cells: np.concatenate([c for cell in cells for c in (cell, gap)][:-1], axis=1)  # noqa: E731
    return np.concatenate([row(top), np.full((2, row(top).shape[1], 3), 255, np.uint8), row(bottom)], axis=0)
