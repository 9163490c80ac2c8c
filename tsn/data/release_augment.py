"""The TSN release's training augmentation, as the ``release`` preset.

Facts from RELEASE_CHECKPOINTS.md (the release's PASCAL loader for edge,
semseg, parts and saliency): resize to 512x512 (image bicubic, labels
nearest), then albumentations ``HorizontalFlip(0.5)``,
``ShiftScaleRotate(shift 0.1, scale 0.5, rotate 0, border 0)``,
``PadIfNeeded(512)`` + ``RandomCrop(512)`` (no-ops after the resize), additive
Gaussian noise (p 0.2), and three ``OneOf`` photometric groups (p 0.9 each).
Normals use ASTMT's transforms instead: flip (x negated), ``ScaleNRotate``
(rotation -20..20 degrees, scale 0.75..1.25, vectors rotated in-plane with
the image), resize to 512x512 and renormalisation.

What differs from the release, and why:

- One sample carries every task's label here, and one geometry must serve
  them all, so normals follow the albumentations geometry in multi-task
  samples (no rotation, so their vectors are only flipped); a sample whose
  only label is normals gets ASTMT's ScaleNRotate, as in the release.
- Border value 0 for image and labels, as ``border_mode=0`` does: the
  labels' pad is a class / "no edge" / "not salient", not "no label" (255),
  exactly the release's choice; depth and normals pad with 0 = invalid.
- CLAHE (one of three choices of the first photometric group) is left out
  (that group picks brightness or gamma); the other operations follow the
  albumentations definitions at their default parameters (noise std 1-5%
  of the range, brightness and contrast +-0.2, gamma 0.8-1.2, sharpen alpha
  0.2-0.5 / lightness 0.5-1, box and motion blur of size 3, hue +-20 / 180,
  saturation +-30 / 255, value +-20 / 255), on images in [0, 1].
- Resampling is torch's (``grid_sample`` and ``interpolate``), not OpenCV's.
- Depth (not a PASCAL task) is resampled like the other maps, not rescaled
  with the zoom as the default augmentation does.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

SIZE = (512, 512)


def _u(lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand(()))


def _labels(sample: dict[str, Any]) -> list[str]:
    return [k for k, v in sample.items() if k not in ("image", "meta") and isinstance(v, torch.Tensor)]


def _is_vector_field(x: torch.Tensor) -> bool:
    return x.dim() == 3 and x.shape[0] == 3 and x.is_floating_point()


def _resample(x: torch.Tensor, grid: torch.Tensor, mode: str) -> torch.Tensor:
    """Warp ``x`` ([H,W] class map or [C,H,W]) by ``grid``; outside is 0 (border_mode=0)."""
    squeeze = x.dim() == 2
    y = x[None, None] if squeeze else x[None]
    y = F.grid_sample(y.float(), grid, mode=mode, padding_mode="zeros", align_corners=False)[0]
    y = y[0] if squeeze else y
    return y.round().to(x.dtype) if not x.is_floating_point() else y


def _affine_grid(h: int, w: int, scale: float, angle_deg: float, shift: tuple[float, float]) -> torch.Tensor:
    """Sampling grid of ``cv2.getRotationMatrix2D(centre, angle, scale)`` followed by a
    shift of ``shift`` (fractions of width / height), in normalised coordinates."""
    a = math.radians(angle_deg)
    # output pixel -> input pixel: inverse of (rotate by +a counter-clockwise, scale s, then shift)
    cs, sn = math.cos(a) / scale, math.sin(a) / scale
    # y axis points down, so a counter-clockwise image rotation is clockwise in (x, y)
    theta = torch.tensor([[cs, -sn * h / w, 0.0], [sn * w / h, cs, 0.0]], dtype=torch.float32)
    tx, ty = -2 * shift[0], -2 * shift[1]
    theta[:, 2] = theta[:, :2] @ torch.tensor([tx, ty])
    return F.affine_grid(theta[None], [1, 1, h, w], align_corners=False)


def resize_fixed(sample: dict[str, Any], size=SIZE) -> dict[str, Any]:
    """``FixedResize``: aspect ratio ignored; image bicubic, labels nearest,
    vector fields bicubic then renormalised (zero vectors stay invalid)."""
    out = dict(sample)
    out["image"] = F.interpolate(sample["image"][None], size=size, mode="bicubic", align_corners=False)[0].clamp(0, 1)
    for k in _labels(sample):
        x = sample[k]
        if _is_vector_field(x):
            valid = F.interpolate((x.abs().sum(0, keepdim=True) > 0).float()[None], size=size, mode="nearest")[0]
            y = F.interpolate(x[None], size=size, mode="bicubic", align_corners=False)[0]
            out[k] = torch.where(valid > 0, y / y.norm(dim=0, keepdim=True).clamp_min(1e-6), torch.zeros_like(y))
        elif x.dim() == 2:
            out[k] = F.interpolate(x[None, None].float(), size=size, mode="nearest")[0, 0].to(x.dtype)
        else:
            out[k] = F.interpolate(x[None].float(), size=size, mode="nearest")[0].to(x.dtype)
    return out


def hflip(sample: dict[str, Any]) -> dict[str, Any]:
    out = dict(sample)
    out["image"] = sample["image"].flip(-1)
    for k in _labels(sample):
        x = sample[k].flip(-1)
        if _is_vector_field(x):
            x = x.clone()
            x[0] = -x[0]
        out[k] = x
    return out


def warp(sample: dict[str, Any], scale: float, angle_deg: float, shift=(0.0, 0.0), image_mode="bilinear") -> dict[str, Any]:
    """Scale about the centre, rotate (degrees, counter-clockwise as cv2), shift;
    border 0 everywhere. Vector fields: their in-plane part is rotated by the
    same angle (as ASTMT's ScaleNRotate does), bicubic, then renormalised."""
    h, w = sample["image"].shape[-2:]
    grid = _affine_grid(h, w, scale, angle_deg, shift)
    out = dict(sample)
    out["image"] = _resample(sample["image"], grid, image_mode).clamp(0, 1)
    for k in _labels(sample):
        x = sample[k]
        if _is_vector_field(x):
            a = math.radians(angle_deg)
            rx = x[0] * math.cos(a) + x[1] * math.sin(a)
            ry = -x[0] * math.sin(a) + x[1] * math.cos(a)
            x = torch.stack([rx, ry, x[2]])
            valid = _resample((x.abs().sum(0, keepdim=True) > 0).float(), grid, "nearest")
            y = _resample(x, grid, "bicubic")
            out[k] = torch.where(valid > 0, y / y.norm(dim=0, keepdim=True).clamp_min(1e-6), torch.zeros_like(y))
        else:
            out[k] = _resample(x, grid, "nearest")
    return out


# --- photometric operations on an image in [0, 1] ------------------------------------------


def _conv(img: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    k = k.to(img.dtype)
    pad = k.shape[-1] // 2
    y = F.conv2d(F.pad(img[:, None], (pad,) * 4, mode="replicate"), k[None, None])
    return y[:, 0]


def sharpen(img: torch.Tensor, alpha: float, lightness: float) -> torch.Tensor:
    """imgaug's Sharpen: blend of the image and a lightness-weighted Laplacian sharpening."""
    nochange = torch.tensor([[0, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=torch.float32)
    effect = torch.tensor([[-1, -1, -1], [-1, 8 + lightness, -1], [-1, -1, -1]], dtype=torch.float32)
    return _conv(img, (1 - alpha) * nochange + alpha * effect).clamp(0, 1)


def motion_blur(img: torch.Tensor) -> torch.Tensor:
    """A 3-pixel line kernel in a random direction (horizontal, vertical or a diagonal)."""
    k = torch.zeros(3, 3)
    which = int(torch.randint(0, 4, ()))
    if which == 0:
        k[1, :] = 1
    elif which == 1:
        k[:, 1] = 1
    elif which == 2:
        k[range(3), range(3)] = 1
    else:
        k[range(3), [2, 1, 0]] = 1
    return _conv(img, k / 3)


def rgb_to_hsv(img: torch.Tensor) -> torch.Tensor:
    r, g, b = img
    mx, mn = img.max(0).values, img.min(0).values
    d = mx - mn
    h = torch.zeros_like(mx)
    safe = d.clamp_min(1e-12)
    h = torch.where(mx == r, ((g - b) / safe) % 6, h)
    h = torch.where((mx == g) & (mx != r), (b - r) / safe + 2, h)
    h = torch.where((mx == b) & (mx != r) & (mx != g), (r - g) / safe + 4, h)
    h = torch.where(d > 0, h / 6, torch.zeros_like(h))
    s = torch.where(mx > 0, d / mx.clamp_min(1e-12), torch.zeros_like(mx))
    return torch.stack([h, s, mx])


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    h, s, v = hsv
    i = torch.floor(h * 6)
    f = h * 6 - i
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    i = i.long() % 6
    r = torch.stack([v, q, p, p, t, v]).gather(0, i[None])[0]
    g = torch.stack([t, v, v, q, p, p]).gather(0, i[None])[0]
    b = torch.stack([p, p, t, v, v, q]).gather(0, i[None])[0]
    return torch.stack([r, g, b])


def hue_saturation_value(img: torch.Tensor, dh: float, ds: float, dv: float) -> torch.Tensor:
    h, s, v = rgb_to_hsv(img)
    return hsv_to_rgb(torch.stack([(h + dh) % 1.0, (s + ds).clamp(0, 1), (v + dv).clamp(0, 1)])).clamp(0, 1)


def photometric(img: torch.Tensor) -> torch.Tensor:
    """Noise (p 0.2), then the three OneOf groups (p 0.9 each)."""
    if float(torch.rand(())) < 0.2:
        img = (img + torch.randn_like(img) * _u(0.01, 0.05)).clamp(0, 1)
    if float(torch.rand(())) < 0.9:  # OneOf([CLAHE (left out), RandomBrightness, RandomGamma])
        if float(torch.rand(())) < 0.5:
            img = (img + _u(-0.2, 0.2)).clamp(0, 1)
        else:
            img = img.clamp(0, 1) ** _u(0.8, 1.2)
    if float(torch.rand(())) < 0.9:  # OneOf([Sharpen, Blur(3), MotionBlur(3)])
        which = int(torch.randint(0, 3, ()))
        if which == 0:
            img = sharpen(img, _u(0.2, 0.5), _u(0.5, 1.0))
        elif which == 1:
            img = _conv(img, torch.full((3, 3), 1 / 9))
        else:
            img = motion_blur(img)
    if float(torch.rand(())) < 0.9:  # OneOf([RandomContrast, HueSaturationValue])
        if float(torch.rand(())) < 0.5:
            img = (img * _u(0.8, 1.2)).clamp(0, 1)
        else:
            img = hue_saturation_value(img, _u(-20, 20) / 180, _u(-30, 30) / 255, _u(-20, 20) / 255)
    return img


class ReleaseAugment:
    """Training transform of the release (see the module docstring)."""

    def __init__(self, size=SIZE) -> None:
        self.size = tuple(size)

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        labels = _labels(sample)
        only_vectors = bool(labels) and all(_is_vector_field(sample[k]) for k in labels)
        if only_vectors:  # ASTMT's normals pipeline: flip, ScaleNRotate, FixedResize
            if float(torch.rand(())) < 0.5:
                sample = hflip(sample)
            sample = warp(sample, _u(0.75, 1.25), _u(-20, 20), image_mode="bicubic")
            sample = resize_fixed(sample, self.size)
        else:
            sample = resize_fixed(sample, self.size)
            if float(torch.rand(())) < 0.5:
                sample = hflip(sample)
            sample = warp(sample, _u(0.5, 1.5), 0.0, (_u(-0.1, 0.1), _u(-0.1, 0.1)))
        out = dict(sample)
        out["image"] = photometric(sample["image"])
        return out

    def __repr__(self) -> str:
        return f"ReleaseAugment({self.size})"
