"""Predict every task on your own images: ``tsn.predict(model, images)``.

Each image is brought to the network's input geometry as evaluation brings
it (``pad``: shrunk to fit ``size`` if larger, aspect kept, padded with the
ImageNet mean, which normalises to zero; ``resize``: resampled to exactly
``size``; ``native``: as it is), all requested tasks are decoded in one
stacked pass per batch, and every output is brought back to the image's own
size (the padding cropped, then a bilinear resize of the raw output, as
evaluation resizes predictions). Outputs are then made readable:

===============  ===========================================================
task kind        array returned (float32, at the image's H x W)
===============  ===========================================================
class map        ``[C, H, W]`` softmax probabilities (``argmax(0)``: labels)
binary map       ``[H, W]`` sigmoid probability (edge, saliency)
vector field     ``[3, H, W]`` unit vectors (normals)
scalar map       ``[H, W]`` in the dataset's unit (depth: metres)
===============  ===========================================================
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from tsn.data.base import parse_size as parse_data_size
from tsn.errors import ConfigError, DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif")
# The encoders downsample 32x: below 32 px a side the deepest features are
# less than one pixel of the image, and the decoder's coarsest level (and
# everything it conditions) sees no image content.
MIN_SIZE = 32
GEOMETRIES = ("pad", "resize", "native")

def task_kind(task: str) -> str:
    """``class_map`` | ``binary_map`` | ``vector_field`` | ``scalar_map``, or
    ``raw`` for a task this project does not describe (added with add_task)."""
    from tsn.tasks import get_task

    try:
        return get_task(task).kind
    except ConfigError:
        return "raw"


# ---------------------------------------------------------------- images


def read_image(path: str | Path) -> np.ndarray:
    """uint8 H x W x 3 RGB, turned upright by its EXIF orientation (photos);
    anything PIL cannot decode is a one-line :class:`DataError`."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I", "F"):  # 16-bit / float greyscale: scale to 8 bits
                a = np.asarray(im, np.float32)
                a = (a - a.min()) / max(float(a.max() - a.min()), 1e-6) * 255
                return np.repeat(a.astype(np.uint8)[..., None], 3, -1)
            return np.asarray(im.convert("RGB"), np.uint8).copy()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except Exception as e:  # noqa: BLE001 - every undecodable file is the same user error
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"{path}: not a readable image ({why})") from None


def as_image(x: Any) -> np.ndarray:
    """A path, a PIL image, or an H x W x 3 array (uint8, or float in [0, 1]) as uint8 H x W x 3."""
    if isinstance(x, (str, Path)):
        return read_image(x)
    if hasattr(x, "convert") and hasattr(x, "size"):  # PIL image
        return np.asarray(x.convert("RGB"), np.uint8).copy()
    a = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, -1)
    if a.ndim != 3 or a.shape[-1] not in (3, 4):
        raise DataError(f"an image must be H x W x 3 (RGB), got an array of shape {a.shape}")
    a = a[..., :3]
    if a.dtype != np.uint8:
        a = (np.clip(a.astype(np.float32), 0, 1) * 255 + 0.5).astype(np.uint8)
    return a


#: sizes for the network: ``None`` / ``"native"``, ``N`` or ``(H, W)``, no side below :data:`MIN_SIZE`
parse_size = partial(parse_data_size, minimum=MIN_SIZE, limit="network's minimum")  # the encoder downsamples 32x


def _to_tensor(img: np.ndarray) -> Tensor:
    from tsn.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() / 255
    return (x - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear, antialiased when shrinking (the datasets' image resize)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    down = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x[None], size=size, mode="bilinear", align_corners=False, antialias=down)[0]


def prepare(img: np.ndarray, size: tuple[int, int] | None, geometry: str) -> tuple[Tensor, tuple[int, int]]:
    """The normalised network input and the (h, w) of its real content."""
    x = _to_tensor(img)
    h, w = img.shape[:2]
    if size is None or geometry == "native":
        if min(h, w) < MIN_SIZE:
            raise DataError(f"{h}x{w} is below the network's minimum of {MIN_SIZE} px a side; give a --size")
        return x, (h, w)
    if geometry == "resize":
        return _resize(x, size), size
    s = min(size[0] / h, size[1] / w, 1.0)
    if s < 1.0:
        x = _resize(x, (min(int(round(h * s)), size[0]), min(int(round(w * s)), size[1])))
    vh, vw = x.shape[-2:]
    return F.pad(x, (0, size[1] - vw, 0, size[0] - vh)), (vh, vw)  # zero = the normalised ImageNet mean


def postprocess(task: str, y: Tensor, valid: tuple[int, int], out_size: tuple[int, int]) -> np.ndarray:
    """One image's raw output [C, h, w] -> the readable array at ``out_size`` (module docstring)."""
    y = y[:, : valid[0], : valid[1]].float()
    if tuple(y.shape[-2:]) != tuple(out_size):
        y = F.interpolate(y[None], size=out_size, mode="bilinear", align_corners=False)[0]
    kind = task_kind(task)
    if kind == "class_map":
        y = y.softmax(0)
    elif kind == "binary_map":
        y = torch.sigmoid(y[0])
    elif kind == "vector_field":
        y = y / y.norm(dim=0, keepdim=True).clamp_min(1e-12)
    elif kind == "scalar_map":
        y = y[0]
    return y.cpu().numpy().astype(np.float32, copy=False)


# ---------------------------------------------------------------- predict


def _code_tensor(model, tasks: list[str], code) -> Tensor | None:
    if code is None:
        return None
    if len(tasks) != 1:
        raise ConfigError(f"a code drives one task's prediction; pass exactly one task, got {len(tasks)}")
    codes = getattr(model, "codes", None)
    if codes is None:
        raise ConfigError(f"a {type(model).__name__} has no task codes; only a TSN predicts with a given code")
    c = torch.as_tensor(np.asarray(code, np.float32)).reshape(-1)
    if c.numel() != codes.dim:
        raise ConfigError(f"the code has {c.numel()} entries; this model's codes have {codes.dim}")
    return c


def check_tasks(model, tasks: Sequence[str] | None) -> list[str]:
    tasks = list(model.tasks if tasks is None else tasks)
    bad = [t for t in tasks if t not in model.task_channels]
    if bad:
        raise ConfigError(f"the model has no task {', '.join(bad)}; it has {', '.join(model.tasks)}")
    if not tasks:
        raise ConfigError(f"no task asked for; the model has {', '.join(model.tasks)}")
    return tasks


@torch.no_grad()
def iter_predict(
    model,
    images: Iterable[Any],
    tasks: Sequence[str] | None = None,
    size: Any = None,
    geometry: str = "pad",
    code: Any = None,
    batch_size: int = 8,
    on_error: Callable[[int, Exception], None] | None = None,
) -> Iterator[tuple[int, np.ndarray, dict[str, np.ndarray]]]:
    """Yield ``(index, image, {task: array})`` in input order, ``batch_size``
    images per stacked pass (images of one network input size batch together).
    An unreadable image calls ``on_error(index, error)`` and is skipped; without
    ``on_error`` it raises."""
    if geometry not in GEOMETRIES:
        raise ConfigError(f"geometry must be one of {', '.join(GEOMETRIES)}, got {geometry!r}")
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    tasks = check_tasks(model, tasks)
    size = parse_size(size)
    c = _code_tensor(model, tasks, code)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()

    def run(chunk):
        groups: dict[tuple[int, int], list] = {}
        for item in chunk:
            groups.setdefault(tuple(item[2].shape[-2:]), []).append(item)
        done = {}
        for items in groups.values():
            x = torch.stack([it[2] for it in items]).to(device)
            out = model(x, tasks=tasks) if c is None else {tasks[0]: model(x, task=tasks[0], code=c.to(device))}
            for j, (i, img, _, valid) in enumerate(items):
                done[i] = (img, {t: postprocess(t, out[t][j], valid, img.shape[:2]) for t in tasks})
        for i, _, _, _ in chunk:
            yield (i, *done[i])

    chunk: list = []
    try:
        for i, src in enumerate(images):
            try:
                img = as_image(src)
                x, valid = prepare(img, size, "native" if size is None else geometry)
            except DataError as e:
                if on_error is None:
                    raise
                on_error(i, e)
                continue
            chunk.append((i, img, x, valid))
            if len(chunk) == batch_size:
                yield from run(chunk)
                chunk = []
        if chunk:
            yield from run(chunk)
    finally:
        model.train(was_training)


def predict(model, images, tasks: Sequence[str] | None = None, size: Any = None, *, geometry: str | None = None,
            code: Any = None, batch_size: int = 8) -> list[dict[str, np.ndarray]]:
    """Every task's prediction for each image, at the image's own size.

    ``images``: one or a list of paths, PIL images or H x W x 3 arrays.
    ``size``: the network input (``N`` or ``(H, W)``; ``None``: the size the
    run was trained at when the model came from :func:`tsn.load_run`, else
    each image's own). ``geometry``: how an image meets ``size`` (``pad`` as
    evaluation does, or ``resize``; ``None``: the run's, else ``pad``). ``code``: a code vector for a one-task
    prediction of a TSN (``tasks=[t]`` picks the output head). Returns one
    ``{task: array}`` per image (arrays as in the module docstring)."""
    if isinstance(images, (str, Path, np.ndarray, Tensor)) or hasattr(images, "convert"):
        images = [images]
    if size is None:
        size = getattr(model, "input_size", None)
    geometry = geometry or getattr(model, "input_geometry", "pad")
    return [p for _, _, p in iter_predict(model, list(images), tasks, size, geometry, code, batch_size)]


# ---------------------------------------------------------------- pictures

def _caption(task: str) -> str:
    """The task's description up to its first comma (``boundary detection``), else its name."""
    from tsn.tasks import get_task

    try:
        return get_task(task).description.split(",")[0] or task
    except ConfigError:
        return task


def _class_legend(labels: np.ndarray, names: Sequence[str] | None, palette: np.ndarray, top: int = 8):
    from matplotlib.patches import Patch

    ids, counts = np.unique(labels, return_counts=True)
    order = np.argsort(-counts)
    handles = []
    for k in order[:top]:
        i = int(ids[k])
        name = names[i] if names is not None and i < len(names) else f"class {i}"
        share = 100 * counts[k] / labels.size
        handles.append(Patch(color=palette[i] / 255, label=f"{name} {share:.0f}%" if share >= 1 else f"{name} <1%"))
    if len(order) > top:
        handles.append(Patch(color="white", label=f"+{len(order) - top} more"))
    return handles


def render_panel(image: np.ndarray, prediction: dict[str, np.ndarray], class_names: dict[str, Sequence[str]] | None = None,
                 title: str | None = None, cell: float = 2.2) -> bytes:
    """A PNG a person can read: the input, then one captioned column per task;
    class maps get a legend of the classes they show (largest first)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from tsn.data.visualize import colorize, voc_palette

    palette = voc_palette()
    class_names = class_names or {}
    h, w = image.shape[:2]
    aspect = w / h
    n = 1 + len(prediction)
    has_legend = any(task_kind(t) == "class_map" for t in prediction)
    fig_h = cell + 0.45 + (1.0 if has_legend else 0)
    fig, axes = plt.subplots(1, n, figsize=(n * cell * max(aspect, 0.75) + 0.2, fig_h), squeeze=False,
                             gridspec_kw={"wspace": 0.08})
    axes = axes[0]
    axes[0].imshow(image)
    axes[0].set_title(f"{title}\n{w}x{h}" if title else f"input\n{w}x{h}", fontsize=8.5)
    for ax, (t, p) in zip(axes[1:], prediction.items()):
        kind = task_kind(t)
        caption = _caption(t)
        if kind == "class_map":
            caption += "\nmost likely class"
            labels = p.argmax(0)
            ax.imshow(palette[labels])
            ax.legend(handles=_class_legend(labels, class_names.get(t), palette), loc="upper center",
                      bbox_to_anchor=(0.5, -0.02), ncol=2, fontsize=6.5, frameon=False, handlelength=1.0,
                      columnspacing=0.8, handletextpad=0.4)
        elif kind == "binary_map":
            ax.imshow(p, cmap="gray", vmin=0, vmax=1)
            caption += "\nprobability (white = 1)"
        elif kind == "vector_field":
            ax.imshow(colorize(t, p))
            caption += "\n(n+1)/2 as RGB"
        elif kind == "scalar_map":
            lo, hi = float(p.min()), float(p.max())
            ax.imshow(colorize(t, np.maximum(p, 1e-6), vmax=max(hi, 1e-6)))
            caption += f"\n{lo:.2g} to {hi:.2g}"
        else:
            a = p[0]
            ax.imshow(a, cmap="gray")
            caption += "\nchannel 0"
        ax.set_title(caption, fontsize=8.5)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", pad_inches=0.05)
    plt.close(fig)
    return buf.getvalue()


__all__ = ["GEOMETRIES", "IMAGE_EXTENSIONS", "MIN_SIZE", "as_image", "iter_predict", "parse_size", "postprocess",
           "predict", "prepare", "read_image", "render_panel", "task_kind"]
