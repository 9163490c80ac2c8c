"""Test-time geometry: how an image of any size reaches the network, and how
each prediction gets back to the image's own pixels before it is scored.

Every metric is computed on the image's real pixels at its real size (so the
edge tolerance ``max_dist x diagonal`` is that of the original image, not of
a padded canvas). Two geometries (``eval.geometry``):

- ``pad`` (this project's default): the image is padded bottom/right to the
  evaluation size (shrunk first, aspect kept, only if it is larger); each
  prediction is cropped to the valid region the transform recorded
  (``meta["valid"]``) and, if the image had been shrunk, resized back to the
  original size (bilinear on logits / vectors) and scored against the
  original labels. Nothing is quantised.
- ``release``: the authors' test pipeline (RELEASE_CHECKPOINTS.md): the image
  is resized to the evaluation size ignoring the aspect ratio with bicubic
  interpolation (cv2 INTER_CUBIC: a = -0.75, no antialiasing, no clamping);
  predictions are resized back to the original size as the release's
  ``cv2.resize`` does (INTER_NEAREST of the argmax for class maps,
  INTER_LINEAR for the rest) and truncated to 8 bits where the release
  writes PNGs (edge and saliency ``255 * sigmoid``, normals
  ``(unit + 1) * 255 / 2``); depth (no PNG in the release) is resized only.
  Scored against the original labels.

The release's 8-bit values k reach the metrics (which take logits) as logits
chosen so that every threshold comparison a metric makes is the one it would
make on k/255 and a metric that truncates to 8 bits itself gets k back (see
:func:`_quant_logits`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from tsn.data.transforms import FitPad
from tsn.errors import ConfigError

GEOMETRIES = ("pad", "release")


def task_kind(task: str) -> str:
    """One of class_map | binary_map | vector_field | scalar_map."""
    from tsn.tasks import get_task

    return get_task(task).kind


def _labels(sample) -> list[str]:
    from tsn.tasks import is_label

    return [k for k in sample if is_label(k)]


def check_geometry(name: str) -> str:
    if name not in GEOMETRIES:
        raise ConfigError(f"eval.geometry: {name!r} is not valid; valid: {', '.join(GEOMETRIES)}")
    return name


# ---------------------------------------------------------------- transforms (input side)


class PadEval(FitPad):
    """:class:`~tsn.data.transforms.FitPad` that also keeps the original labels
    when it has to shrink the image (so scoring stays at the original size)."""

    def __call__(self, sample):
        h, w = sample["image"].shape[-2:]
        originals = {k: sample[k] for k in _labels(sample)}
        out = super().__call__(sample)
        meta = {**out["meta"], "geometry": "pad", "size": (int(h), int(w))}
        if tuple(meta["valid"]) != (h, w):
            meta["original"] = originals
        out["meta"] = meta
        return out

    def __repr__(self) -> str:
        return f"PadEval({self.size})"


def _cubic_image(img: Tensor, size: tuple[int, int]) -> Tensor:
    """cv2.resize INTER_CUBIC on a float image: a = -0.75, half-pixel centres,
    no antialiasing and no clamping (the release reads float32 images)."""
    if tuple(img.shape[-2:]) == tuple(size):
        return img
    return F.interpolate(img[None].double(), size=size, mode="bicubic", align_corners=False)[0].to(img.dtype)


class ReleaseResize:
    """The release's ``FixedResize`` for testing: image bicubic to ``size``
    (aspect ignored), labels nearest (normals bicubic, renormalised); the
    original labels and size are kept in ``meta`` for scoring."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = tuple(size)

    def __call__(self, sample):
        h, w = sample["image"].shape[-2:]
        out = dict(sample)
        out["image"] = _cubic_image(sample["image"], self.size)
        for k in _labels(sample):
            x = sample[k]
            if task_kind(k) == "vector_field":
                y = _cubic_image(x, self.size)
                n = y.norm(dim=0, keepdim=True)
                out[k] = torch.where(n > 0, y / n.clamp_min(1e-12), torch.zeros_like(y))
            else:
                out[k] = _nearest(x, self.size)
        out["meta"] = {**sample.get("meta", {}), "geometry": "release", "size": (int(h), int(w)),
                       "original": {k: sample[k] for k in _labels(sample)}}
        return out

    def __repr__(self) -> str:
        return f"ReleaseResize({self.size})"


def eval_transform(geometry: str, size, native_size=None):
    """The evaluation transform of ``geometry`` for a dataset evaluated at ``size``."""
    from tsn.data.transforms import Identity

    check_geometry(geometry)
    if size is None or (native_size is not None and tuple(native_size) == tuple(size)):
        return Identity()
    return PadEval(size) if geometry == "pad" else ReleaseResize(size)


# ---------------------------------------------------------------- output side


def _nearest(x: Tensor, size) -> Tensor:
    """cv2 INTER_NEAREST: source index floor(dst * src / dst_size) (torch's "nearest")."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    lead = x.shape[:-2]
    y = F.interpolate(x.reshape(1, -1, *x.shape[-2:]).float(), size=tuple(size), mode="nearest")
    return y.reshape(*lead, *size).to(x.dtype)


def _linear(x: Tensor, size) -> Tensor:
    """cv2 INTER_LINEAR on float data: half-pixel centres, no antialiasing."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    lead = x.shape[:-2]
    y = F.interpolate(x.reshape(1, -1, *x.shape[-2:]), size=tuple(size), mode="bilinear", align_corners=False)
    return y.reshape(*lead, *size)


#: 8-bit values that equal a threshold of some protocol (k/255 = 0.2, 0.4, 0.6, 0.8)
TIE_LEVELS = (51, 102, 153, 204)


def _quant_logits() -> Tensor:
    """k = 0..255 -> a float32 logit L_k for the metrics, with
    ``floor(255 * sigmoid(L_k)) == k`` (a metric that truncates to 8 bits
    gets k back) and ``sigmoid(L_k)`` above k/255 by about 1e-6, so any
    threshold that k/255 does not equal compares as k/255 does; for the
    levels that equal a threshold (:data:`TIE_LEVELS`) sigmoid(L_k) is
    float32(k/255) itself, so ``>`` and ``>=`` both compare as on k/255."""
    k = torch.arange(256, dtype=torch.float64)
    p = k / 255.0 + 1e-6
    out = (torch.log(p) - torch.log1p(-p)).float()
    out[0], out[255] = -float("inf"), float("inf")
    for level in TIE_LEVELS:
        want = torch.tensor(level / 255.0, dtype=torch.float32)
        c = torch.tensor(math.log(level / 255.0) - math.log1p(-level / 255.0), dtype=torch.float32)
        for _ in range(256):
            s = torch.sigmoid(c)
            if s == want:
                break
            c = torch.nextafter(c, torch.tensor(math.inf if s < want else -math.inf))
        out[level] = c
    return out


_QUANT: Tensor | None = None


def quant_logits() -> Tensor:
    global _QUANT
    if _QUANT is None:
        _QUANT = _quant_logits()
    return _QUANT


def to_uint8(x: Tensor) -> Tensor:
    """numpy ``astype(uint8)`` of values in [0, 255]: truncation toward zero."""
    return x.clamp(0, 255).floor().to(torch.uint8)


def release_output(task: str, pred: Tensor, size) -> Tensor:
    """One image's prediction [C,h,w] through the release's saving chain at
    the original ``size``; returns the release's stored value: uint8 [1,H,W]
    for binary maps, uint8 [3,H,W] for normals, long [H,W] labels for class
    maps, float [1,H,W] for scalar maps."""
    kind = task_kind(task)
    pred = pred.float()
    if kind == "class_map":
        return _nearest(pred.argmax(0), size).long()
    if kind == "binary_map":
        return to_uint8(_linear(255.0 * torch.sigmoid(pred), size))
    if kind == "vector_field":
        unit = pred / pred.norm(dim=0, keepdim=True).clamp_min(1e-12)
        return to_uint8(_linear((unit + 1.0) * 255.0 / 2.0, size))
    return _linear(pred, size)


def stored_to_metric_input(task: str, stored: Tensor) -> Tensor:
    """The release's stored value as what the metrics take (logits, labels, vectors, metres)."""
    kind = task_kind(task)
    if kind == "binary_map":
        return quant_logits()[stored.long().cpu()]
    if kind == "vector_field":
        return 2.0 * stored.float() / 255.0 - 1.0
    return stored


def restore(task: str, pred: Tensor, label: Tensor | None, meta: dict[str, Any]) -> tuple[Tensor, Tensor | None]:
    """(prediction, label) of one image on its real pixels at its original size.

    ``pred`` is the network's output [C,h,w] for that image, ``label`` the
    batch's label at network size. The prediction comes back in the form the
    metric takes (logits / labels / vectors / metres).

    A dataset may give a task a scoring target of its own at the original size,
    ``meta["eval_targets"][task]`` (BSDS500: every annotator's boundaries, [K,H,W]);
    it replaces the label, and the prediction is brought to its size if it is not
    there yet (a plain evaluation resize, or a shrink whose originals were not kept)."""
    geometry = meta.get("geometry", "pad")
    original = meta.get("original") or {}
    target = (meta.get("eval_targets") or {}).get(task)
    if geometry == "release":
        size = tuple(meta["size"])
        stored = release_output(task, pred, size)
        return stored_to_metric_input(task, stored), original.get(task, label) if target is None else target
    valid = meta.get("valid")
    if valid is not None:
        vh, vw = int(valid[0]), int(valid[1])
        pred = pred[..., :vh, :vw]
        if label is not None:
            label = label[..., :vh, :vw]
    if task in original:  # shrunk to fit: back to the original size
        size = tuple(meta["size"])
        pred = _linear(pred.float(), size)
        label = original[task]
    if target is not None:
        if tuple(pred.shape[-2:]) != tuple(target.shape[-2:]):
            pred = _linear(pred.float(), tuple(target.shape[-2:]))
        label = target
    return pred, label


def needs_restore(meta: dict[str, Any]) -> bool:
    """Whether a sample's prediction differs in geometry from its original image
    (or is scored against a target of its own, ``meta["eval_targets"]``)."""
    return ("valid" in meta or meta.get("geometry") == "release" or bool(meta.get("original"))
            or bool(meta.get("eval_targets")))


def export_value(task: str, pred: Tensor, meta: dict[str, Any]):
    """The prediction at the original size in the evaluators' formats (numpy):
    uint8 HxW for edge / saliency (``255 * sigmoid``, truncated, as the release
    writes them) and class labels, uint8 HxWx3 for normals
    (``(unit + 1) * 255 / 2``), float32 HxW metres for depth."""
    import numpy as np

    kind = task_kind(task)
    if meta.get("geometry") == "release":
        stored = release_output(task, pred, tuple(meta["size"]))
    else:
        p, _ = restore(task, pred, None, meta)
        p = p.float()
        if kind == "class_map":
            stored = p.argmax(0)
        elif kind == "binary_map":
            stored = to_uint8(255.0 * torch.sigmoid(p))
        elif kind == "vector_field":
            unit = p / p.norm(dim=0, keepdim=True).clamp_min(1e-12)
            stored = to_uint8((unit + 1.0) * 255.0 / 2.0)
        else:
            stored = p
    a = stored.cpu().numpy()
    if kind == "class_map":
        return a.astype(np.uint8 if a.max(initial=0) < 256 else np.uint16)
    if kind == "binary_map":
        return a[0]
    if kind == "vector_field":
        return np.ascontiguousarray(a.transpose(1, 2, 0))
    return a[0].astype(np.float32)


__all__ = ["GEOMETRIES", "PadEval", "ReleaseResize", "check_geometry", "eval_transform", "export_value",
           "needs_restore", "release_output", "restore", "stored_to_metric_input", "task_kind"]
