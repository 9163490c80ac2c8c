"""Joint transforms on sample dicts, keeping every label consistent with the image.

They act on the unnormalised sample (``image`` float [3,H,W] in [0,1]; labels
in their final format) and draw randomness from torch's global generator, so a
DataLoader worker seed makes them reproducible. Geometry rules:

Every key of the sample that names a registered task is a label, and its
task (:mod:`tsn.tasks`) decides:

- images are resampled bilinearly, labels as their kind says (all built-in
  kinds: nearest neighbour, pixel-centre exact, so class ids, unit normals
  and {0,1} maps stay valid);
- a horizontal flip mirrors the x axis, and the kind changes what points
  along x (normals' x component changes sign);
- zooming in by a factor s brings the scene s times closer: the label is
  multiplied by s ** ``task.zoom_power`` (depth / s, normals unchanged); a
  plain resize for evaluation leaves values alone;
- padding uses each label kind's "no label" value (255 for class and binary
  maps; zero for vector fields and scalar maps; the ImageNet mean for the
  image, which normalises to zero).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from tsn.errors import ConfigError
from tsn.tasks import get_task, is_label

#: the input normalisation of every encoder (ImageNet statistics), applied by the datasets
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _labels(sample) -> list[str]:
    return [k for k in sample if is_label(k)]


def _rand() -> float:
    return float(torch.rand(()))


def _uniform(lo: float, hi: float) -> float:
    return lo + (hi - lo) * _rand()


def _hw(sample) -> tuple[int, int]:
    return tuple(sample["image"].shape[-2:])


def _resize_label(x: torch.Tensor, size: tuple[int, int], mode: str = "nearest") -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    kw = {"mode": "nearest-exact"} if mode == "nearest" else {"mode": mode, "align_corners": False}
    if x.dim() == 2:  # class map [H,W]
        y = F.interpolate(x[None, None].float(), size=size, **kw)[0, 0]
        return y.to(x.dtype)
    return F.interpolate(x[None], size=size, **kw)[0]


def _resize_image(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    down = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x[None], size=size, mode="bilinear", align_corners=False, antialias=down)[0].clamp(0, 1)


def resize(sample: dict[str, Any], size: tuple[int, int], depth_scale: float = 1.0) -> dict[str, Any]:
    """Resample image and labels to ``size``; a zoom by ``depth_scale`` scales each label
    by ``depth_scale ** task.zoom_power`` (depth is divided by it)."""
    out = dict(sample)
    out["image"] = _resize_image(sample["image"], size)
    for k in _labels(sample):
        task = get_task(k)
        out[k] = _resize_label(sample[k], size, task.label.resize_mode)
        p = task.zoom_power
        if p and depth_scale != 1.0:  # divide for p < 0: depth / s bit for bit as it always was
            out[k] = out[k] / depth_scale**-p if p < 0 else out[k] * depth_scale**p
    return out


def pad(sample: dict[str, Any], size: tuple[int, int]) -> dict[str, Any]:
    """Pad bottom/right to at least ``size`` with the no-label values."""
    h, w = _hw(sample)
    ph, pw = max(size[0] - h, 0), max(size[1] - w, 0)
    if ph == 0 and pw == 0:
        return sample
    out = dict(sample)
    img = sample["image"]
    canvas = torch.tensor(IMAGENET_MEAN, dtype=img.dtype).view(3, 1, 1).expand(3, h + ph, w + pw).clone()
    canvas[:, :h, :w] = img
    out["image"] = canvas
    for k in _labels(sample):
        x = sample[k]
        y = torch.full((*x.shape[:-2], h + ph, w + pw), get_task(k).label.pad_value, dtype=x.dtype)
        y[..., :h, :w] = x
        out[k] = y
    return out


def crop(sample: dict[str, Any], top: int, left: int, size: tuple[int, int]) -> dict[str, Any]:
    out = dict(sample)
    for k in ("image", *_labels(sample)):
        out[k] = sample[k][..., top : top + size[0], left : left + size[1]]
    return out


def hflip(sample: dict[str, Any]) -> dict[str, Any]:
    """Mirror left-right; each label by its kind's rule (normals' x changes sign)."""
    out = dict(sample)
    out["image"] = sample["image"].flip(-1)
    for k in _labels(sample):
        out[k] = get_task(k).label.hflip(sample[k])
    return out


class Compose:
    def __init__(self, transforms) -> None:
        self.transforms = list(transforms)

    def __call__(self, sample):
        for t in self.transforms:
            sample = t(sample)
        return sample

    def __repr__(self) -> str:
        return f"Compose({self.transforms})"


class RandomHorizontalFlip:
    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, sample):
        return hflip(sample) if _rand() < self.p else sample

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip({self.p})"


class RandomScale:
    """Zoom by a factor drawn log-uniformly from ``scale_range``; depth / factor."""

    def __init__(self, scale_range=(0.5, 2.0)) -> None:
        self.lo, self.hi = scale_range

    def __call__(self, sample):
        s = math.exp(_uniform(math.log(self.lo), math.log(self.hi)))
        h, w = _hw(sample)
        size = (max(int(round(h * s)), 1), max(int(round(w * s)), 1))
        return resize(sample, size, depth_scale=s)

    def __repr__(self) -> str:
        return f"RandomScale({self.lo}, {self.hi})"


class RandomCrop:
    """Pad to at least ``size`` with no-label values, then crop ``size`` at a random place."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = tuple(size)

    def __call__(self, sample):
        sample = pad(sample, self.size)
        h, w = _hw(sample)
        top = int(torch.randint(0, h - self.size[0] + 1, ()))
        left = int(torch.randint(0, w - self.size[1] + 1, ()))
        return crop(sample, top, left, self.size)

    def __repr__(self) -> str:
        return f"RandomCrop({self.size})"


class Resize:
    """Evaluation resize to exactly ``size`` (labels nearest, depth unchanged)."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = tuple(size)

    def __call__(self, sample):
        return resize(sample, self.size)

    def __repr__(self) -> str:
        return f"Resize({self.size})"


class FitPad:
    """Evaluation as the community does it: pad to ``size`` (shrinking first, aspect kept,
    only if the image is larger). ``meta['valid']`` records the (h, w) of real content."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = tuple(size)

    def __call__(self, sample):
        h, w = _hw(sample)
        s = min(self.size[0] / h, self.size[1] / w, 1.0)
        if s < 1.0:
            sample = resize(sample, (min(int(round(h * s)), self.size[0]), min(int(round(w * s)), self.size[1])))
        vh, vw = _hw(sample)
        sample = pad(sample, self.size)
        sample["meta"] = {**sample.get("meta", {}), "valid": (vh, vw)}
        return sample

    def __repr__(self) -> str:
        return f"FitPad({self.size})"


class ColorJitter:
    """Photometric noise on the image only: brightness, contrast, saturation, hue shift, pixel noise."""

    def __init__(self, brightness=0.25, contrast=0.25, saturation=0.25, hue=0.03, noise=0.02) -> None:
        self.b, self.c, self.s, self.h, self.n = brightness, contrast, saturation, hue, noise

    def __call__(self, sample):
        img = sample["image"]
        img = img * _uniform(1 - self.b, 1 + self.b)
        grey = (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2])[None]
        img = (img - grey.mean()) * _uniform(1 - self.c, 1 + self.c) + grey.mean()
        grey = (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2])[None]
        img = (img - grey) * _uniform(1 - self.s, 1 + self.s) + grey
        if self.h > 0:  # rotate chroma about the grey axis: a cheap hue shift
            a = _uniform(-self.h, self.h) * 2 * math.pi
            cs, sn = math.cos(a), math.sin(a)
            k = 1 / math.sqrt(3)
            rot = torch.tensor(
                [
                    [cs + (1 - cs) / 3, (1 - cs) / 3 - k * sn, (1 - cs) / 3 + k * sn],
                    [(1 - cs) / 3 + k * sn, cs + (1 - cs) / 3, (1 - cs) / 3 - k * sn],
                    [(1 - cs) / 3 - k * sn, (1 - cs) / 3 + k * sn, cs + (1 - cs) / 3],
                ],
                dtype=img.dtype,
            )
            img = torch.einsum("ij,jhw->ihw", rot, img)
        if self.n > 0:
            img = img + torch.randn_like(img) * (self.n * _rand())
        out = dict(sample)
        out["image"] = img.clamp(0, 1)
        return out

    def __repr__(self) -> str:
        return f"ColorJitter(b={self.b}, c={self.c}, s={self.s}, h={self.h}, noise={self.n})"


def largest_rotated_rect(h: int, w: int, angle_deg: float) -> tuple[float, float]:
    """(height, width) of the largest axis-aligned rectangle inside an h x w rectangle
    rotated by ``angle_deg`` about its centre (both centred)."""
    a = math.radians(angle_deg)
    sin_a, cos_a = abs(math.sin(a)), abs(math.cos(a))
    if sin_a < 1e-12 or cos_a < 1e-12:
        return (float(w), float(h)) if sin_a > cos_a else (float(h), float(w))
    long_side, short_side = max(h, w), min(h, w)
    if short_side <= 2.0 * sin_a * cos_a * long_side or abs(sin_a - cos_a) < 1e-10:
        x = 0.5 * short_side  # half-constrained: two corners touch the longer sides
        wr, hr = (x / sin_a, x / cos_a) if w >= h else (x / cos_a, x / sin_a)
    else:
        cos_2a = cos_a * cos_a - sin_a * sin_a
        wr, hr = (w * cos_a - h * sin_a) / cos_2a, (h * cos_a - w * sin_a) / cos_2a
    return hr, wr


def _rotation_grid(hw: tuple[int, int], angle_deg: float, out_hw: tuple[int, int]) -> Tensor:
    """``grid_sample`` grid (align_corners=False) of an ``out_hw`` canvas centred on an ``hw`` image
    rotated counter-clockwise on screen by ``angle_deg`` about its centre."""
    (h, w), (oh, ow) = hw, out_hw
    a = math.radians(angle_deg)
    cs, sn = math.cos(a), math.sin(a)
    # output pixel (x', y') from the centre -> source (x, y) = (x' cos - y' sin, x' sin + y' cos), y down;
    # in normalised coordinates (x' = u' ow / 2, x = u w / 2, and likewise for y):
    theta = torch.tensor([[ow * cs / w, -oh * sn / w, 0.0], [ow * sn / h, oh * cs / h, 0.0]], dtype=torch.float32)
    return F.affine_grid(theta[None], [1, 1, oh, ow], align_corners=False)


def _warp(x: Tensor, grid: Tensor, mode: str, fill: float, check_inside: bool = True) -> Tensor:
    """``x`` [C,H,W] (or [H,W]) sampled at ``grid``; ``mode`` "bilinear" or "nearest"; outside =
    ``fill`` (``check_inside`` False: the caller knows every output pixel falls inside the source)."""
    squeeze = x.dim() == 2
    y = (x[None] if squeeze else x).float()

    def sample(t: Tensor) -> Tensor:
        return F.grid_sample(t[None], grid, mode=mode, padding_mode="zeros", align_corners=False)[0]

    if mode == "nearest" and not check_inside:
        out = sample(y)
    elif mode == "nearest":  # exact values: the source's inside, ``fill`` outside
        inside = sample(torch.ones_like(y[:1])) > 0
        out = torch.where(inside, sample(y), torch.tensor(fill, dtype=y.dtype))
    else:  # blends toward ``fill`` across the border
        out = sample(y - fill) + fill
    out = out[0] if squeeze else out
    return out.to(x.dtype) if not x.is_floating_point() else out


def rotate(sample: dict[str, Any], angle_deg: float, crop_valid: bool = True) -> dict[str, Any]:
    """Rotate image and labels counter-clockwise by ``angle_deg`` about the centre.

    Multiples of 90 degrees are exact (``rot90``). Other angles resample the image
    bilinearly and the labels by nearest neighbour (ids, {0,1,255} maps and depths stay
    valid). With ``crop_valid`` (HED's choice) the result is the largest axis-aligned
    rectangle inside the rotated image; without, a canvas holding the whole rotated image
    whose corners are the labels' no-label value (and the ImageNet mean for the image).
    Labels whose values point somewhere (vector fields such as normals) are refused."""
    for k in _labels(sample):
        if get_task(k).kind == "vector_field":
            raise ConfigError(f"rotation cannot turn the {k} label's vectors; use an augmentation without rotation")
    turns = angle_deg / 90.0
    out = dict(sample)
    if abs(turns - round(turns)) < 1e-9:
        k = int(round(turns)) % 4
        if k:  # rot90 over dims (-2, -1) turns counter-clockwise on screen, as the general path does
            for key in ("image", *_labels(sample)):
                out[key] = torch.rot90(sample[key], k, dims=(-2, -1))
        return out
    h, w = _hw(sample)
    if crop_valid:  # only the kept rectangle is sampled (a quarter of the canvas or less)
        rh, rw = largest_rotated_rect(h, w, angle_deg)
        # one pixel of margin: every kept pixel centre lies inside the rotated source
        out_hw = (max(int(math.floor(rh)) - 1, 1), max(int(math.floor(rw)) - 1, 1))
    else:
        a = math.radians(angle_deg)
        out_hw = (int(math.ceil(h * abs(math.cos(a)) + w * abs(math.sin(a)) - 1e-6)),
                  int(math.ceil(w * abs(math.cos(a)) + h * abs(math.sin(a)) - 1e-6)))
    grid = _rotation_grid((h, w), angle_deg, out_hw)
    mean = torch.tensor(IMAGENET_MEAN, dtype=sample["image"].dtype).view(3, 1, 1)
    out["image"] = (_warp(sample["image"] - mean, grid, "bilinear", 0.0) + mean).clamp(0, 1)
    for k in _labels(sample):
        out[k] = _warp(sample[k], grid, "nearest", float(get_task(k).label.pad_value), check_inside=not crop_valid)
    return out


class RandomRotation:
    """Rotate by one of ``angles`` (degrees) drawn uniformly; see :func:`rotate`."""

    def __init__(self, angles, crop_valid: bool = True) -> None:
        self.angles = tuple(float(a) for a in angles)
        self.crop_valid = bool(crop_valid)

    def __call__(self, sample):
        a = self.angles[int(torch.randint(0, len(self.angles), ()))]
        return rotate(sample, a, self.crop_valid) if a % 360 else sample

    def __repr__(self) -> str:
        return f"RandomRotation({len(self.angles)} angles, crop_valid={self.crop_valid})"


class RandomChoiceScale:
    """Zoom by one of ``scales`` drawn uniformly (image bilinear, labels nearest, depth / s)."""

    def __init__(self, scales) -> None:
        self.scales = tuple(float(s) for s in scales)

    def __call__(self, sample):
        s = self.scales[int(torch.randint(0, len(self.scales), ()))]
        if s == 1.0:
            return sample
        h, w = _hw(sample)
        return resize(sample, (max(int(round(h * s)), 1), max(int(round(w * s)), 1)), depth_scale=s)

    def __repr__(self) -> str:
        return f"RandomChoiceScale({self.scales})"


#: HED's training augmentation (Xie & Tu 2015; RCF uses the same): scales 0.5, 1, 1.5,
#: 16 rotations (multiples of 22.5 degrees, the largest valid rectangle kept), horizontal flip
HED_SCALES = (0.5, 1.0, 1.5)
HED_ANGLES = tuple(22.5 * k for k in range(16))


def hed_transform(size, scales=HED_SCALES, angles=HED_ANGLES, crop_valid: bool = True) -> Compose:
    """The ``hed`` preset, drawn on the fly (HED and RCF enumerate the 96 variants offline):
    one scale, one rotation, a flip with p 0.5, then pad (no-label values) and a random crop
    to ``size``. No photometric change, as in HED. Datasets refuse it for vector-field
    tasks (normals), which a rotation would have to turn."""
    steps = [RandomChoiceScale(scales), RandomRotation(angles, crop_valid), RandomHorizontalFlip()]
    if size is not None:
        steps.append(RandomCrop(size))
    return Compose(steps)


class Identity:
    def __call__(self, sample):
        return sample

    def __repr__(self) -> str:
        return "Identity()"


def default_transform(train: bool, size, scale_range=(0.5, 2.0), jitter=True, eval_resize="pad", native_size=None):
    """Train: random scale, pad+crop to ``size``, flip, jitter. Eval: pad (or resize) to ``size``.

    Datasets whose images already have ``size`` (the generator) skip the eval step.
    """
    if train:
        steps = [RandomScale(scale_range)]
        if size is not None:
            steps.append(RandomCrop(size))
        steps.append(RandomHorizontalFlip())
        if jitter:
            steps.append(ColorJitter())
        return Compose(steps)
    if size is None or (native_size is not None and tuple(native_size) == tuple(size)):
        return Identity()
    return FitPad(size) if eval_resize == "pad" else Resize(size)
