"""``name="bsds"``: BSDS500, the Berkeley boundary benchmark (the January 2013
release, ``BSR_bsds500.tgz``). One task, ``edge``; 200 train / 100 val / 200
test photographs of 481x321 or 321x481 pixels, each drawn by 4 to 9 people.

Layout (``data.root`` may be that folder or any parent up to :data:`MAX_DEPTH`
levels above it, e.g. the archive's ``BSR/``)::

    DIR/images/{train,val,test}/<id>.jpg
    DIR/groundTruth/{train,val,test}/<id>.mat   # 1xK cell 'groundTruth' of structs
                                                # with Segmentation (uint16) and Boundaries (logical)

Splits: ``train``, ``val``, ``test`` and ``trainval`` (train then val): the
field trains on trainval and tests on test (HED, RCF).

Training label (``edge_label``), from the K annotators' ``Boundaries``:

- ``consensus`` (default; HED / RCF): a pixel marked by a fraction >= ``consensus``
  (default 0.5) of the annotators is a boundary (1), one marked by nobody is not
  (0), and one marked by some but fewer is unlabelled (255, ignored by the loss
  and the metric);
- ``any``: the union of the annotators (1 where anyone marked a boundary, else 0);
- an integer k: annotator k alone (0-based, in the file's order); images with
  k or fewer annotators get an all-unlabelled map.

Evaluation scores against every annotator at the image's original size:
samples built without augmentation (validation, test) carry
``meta["eval_targets"]["edge"]``, the uint8 stack [K,H,W] of all annotators'
Boundaries (1 = boundary, 0 = not) at the original size; the evaluation
(:func:`tsn.engine.geometry.restore`) brings the prediction back to that size
and the edge metric treats the K channels as K annotators. ``sample["edge"]``
stays the one-channel training label (for the validation loss and pictures).
``eval_size`` sets the canvas evaluation samples are padded to (481 holds every
BSDS500 image, so nothing is shrunk); by default it follows ``size``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tsn.data.base import DATASETS, DatasetInfo, MultiTaskDataset, parse_size
from tsn.data.disk import image_tensor, map_tensor, read_rgb
from tsn.errors import ConfigError, DataError

URL = "http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/BSR/BSR_bsds500.tgz"
# Bytes of BSR_bsds500.tgz: the figure the Berkeley server reports (given in the task that added this
# loader; the same constant is tensorpack's DATA_SIZE in tensorpack/dataflow/dataset/bsds500.py).
# python -m tsn.data.download also checks the server's Content-Length against it.
ARCHIVE_SIZE = 70_763_455
SPLITS = ("train", "val", "test")
LAYOUT = ("DIR/{images/{train,val,test}/<id>.jpg, groundTruth/{train,val,test}/<id>.mat (a 1xK cell "
          "'groundTruth' of structs with Segmentation and Boundaries)}, e.g. BSR/BSDS500/data")
MAX_DEPTH = 3  # data.root may be DIR or up to 3 folders above it (DIR/../../.. = the folder holding BSR/)
MAX_FOLDERS = 2000  # folders looked at, at most, while searching below data.root
EDGE_LABELS = ("consensus", "any")
NO_LABEL = 255  # the binary maps' "no label" (tsn.tasks.base.BinaryMap.no_label)


def _has_layout(d: Path) -> bool:
    return (d / "groundTruth").is_dir() and _has_images(d)


def _has_images(d: Path) -> bool:
    return (d / "images").is_dir() and any((d / "images" / s).is_dir() for s in SPLITS)


def _subfolders(d: Path) -> list[Path]:
    try:
        return sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def find_layout(root, name: str = "bsds") -> Path:
    """The folder holding ``images/`` and ``groundTruth/``: ``root`` itself or the one
    folder up to :data:`MAX_DEPTH` levels below it (``root`` None: ``$TSN_BSDS_ROOT``)."""
    hint = f"published as {URL} (python -m tsn.data.download {name} --root DIR)"
    if root is None:
        env = os.environ.get(f"TSN_{name.upper()}_ROOT")
        if not env:
            raise DataError(f"{name}: no root given (root= or $TSN_{name.upper()}_ROOT); expected layout: {LAYOUT}; {hint}")
        root = env
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{name}: {root} is not a folder; expected layout: {LAYOUT}; {hint}")
    level, seen, without_gt = [root], 0, []
    for _ in range(MAX_DEPTH + 1):
        found = [d for d in level if _has_layout(d)]
        if len(found) == 1:
            return found[0]
        if found:
            raise DataError(f"{name}: {root} holds {len(found)} BSDS500 layouts ({', '.join(map(str, found))}); "
                            "set data.root to one of them")
        without_gt += [d for d in level if _has_images(d)]
        nxt = []
        for d in level:
            if seen >= MAX_FOLDERS:
                break
            subs = _subfolders(d)
            seen += len(subs)
            nxt += subs
        level = nxt
    if without_gt:
        raise DataError(f"{name}: {without_gt[0]} has images/ but no groundTruth/ beside it; expected layout: {LAYOUT}")
    raise DataError(f"{name}: no BSDS500 layout in {root} nor up to {MAX_DEPTH} folders below it; "
                    f"expected layout: {LAYOUT}; {hint}")


def read_boundaries(path: Path, hw: tuple[int, int] | None = None) -> np.ndarray:
    """All annotators' ``Boundaries`` of one BSDS500 ground-truth file: uint8 [K,H,W] in {0,1}
    (read by :func:`tsn.metrics.edge_io.read_annotations`, the one reader of the format)."""
    from tsn.metrics.edge_io import read_annotations

    pairs = read_annotations(path)
    missing = [k for k, (_, b) in enumerate(pairs) if b is None]
    if missing:
        raise DataError(f"{path}: annotator {missing[0] + 1} of {len(pairs)} has no Boundaries")
    stack = np.stack([(np.asarray(b) != 0).astype(np.uint8) for _, b in pairs])
    if hw is not None and tuple(stack.shape[1:]) != tuple(hw):
        raise DataError(f"{path}: the annotators' Boundaries are {stack.shape[1]}x{stack.shape[2]}, but the image "
                        f"is {hw[0]}x{hw[1]}")
    return stack


def edge_label(stack: np.ndarray, mode: str | int = "consensus", consensus: float = 0.5) -> np.ndarray:
    """The training label [H,W] float32 of an annotator stack [K,H,W]: 1 boundary, 0 not, 255 no label."""
    k = stack.shape[0]
    count = stack.sum(0, dtype=np.int64)
    if mode == "any":
        return (count > 0).astype(np.float32)
    if mode == "consensus":
        # fraction >= consensus, compared on counts so that 3/6 >= 0.5 holds exactly
        strong = count >= consensus * k - 1e-9
        return np.where(strong, 1.0, np.where(count == 0, 0.0, float(NO_LABEL))).astype(np.float32)
    idx = int(mode)
    if idx >= k:
        return np.full(stack.shape[1:], float(NO_LABEL), np.float32)
    return stack[idx].astype(np.float32)


@DATASETS.register("bsds")
class BSDS(MultiTaskDataset):
    info = DatasetInfo(
        name="bsds",
        tasks=("edge",),
        splits=("train", "val", "test", "trainval"),
        num_classes={},
        class_names={},
        edge_max_dist=0.0075,
        default_size=(320, 320),
        description="BSDS500 boundaries (200 train / 100 val / 200 test images, 481x321, 4-9 annotators each)",
        url=URL,
        notes={"layout": LAYOUT, "splits": "train on trainval, test on test (HED, RCF)",
               "edge": "training label from the annotators (edge_label); scored against all of them"},
    )
    OPTIONS = ("edge_label", "consensus", "eval_size")

    @classmethod
    def check_options(cls, options: dict, where: str) -> None:
        if "edge_label" in options:
            v = options["edge_label"]
            ok = v in EDGE_LABELS or (isinstance(v, int) and not isinstance(v, bool) and v >= 0)
            if not ok:
                raise ConfigError(f"{where}.edge_label: {v!r} is not valid; valid: {', '.join(EDGE_LABELS)} "
                                  "or an annotator index 0, 1, ...")
        if "consensus" in options:
            v = options["consensus"]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
                raise ConfigError(f"{where}.consensus must be in (0, 1] (the fraction of annotators that makes "
                                  f"a boundary), got {v!r}")
        if options.get("eval_size") is not None:
            try:
                parse_size(options["eval_size"])
            except ConfigError as e:
                raise ConfigError(f"{where}.eval_size: {e}") from None

    def __init__(self, root=None, split="train", tasks=info.tasks, size=(320, 320), edge_label: str | int = "consensus",
                 consensus: float = 0.5, eval_size=None, **common: Any) -> None:
        self.check_options({"edge_label": edge_label, "consensus": consensus, "eval_size": eval_size}, "bsds")
        if eval_size is not None and not common.get("augment", False):
            size = parse_size(eval_size)  # evaluation canvas (None: each image's own size)
        super().__init__(split, tasks, size, **common)
        self.edge_label, self.consensus = edge_label, float(consensus)
        self.root = find_layout(root, self.info.name)
        parts = ("train", "val") if split == "trainval" else (split,)
        self.items: list[tuple[str, str]] = []  # (split folder, id)
        for part in parts:
            folder = self.root / "images" / part
            if not folder.is_dir():
                raise DataError(f"bsds: no folder {folder}; expected layout: {LAYOUT}")
            ids = sorted(p.stem for p in folder.glob("*.jpg"))
            if not ids:
                raise DataError(f"bsds: no images (<id>.jpg) in {folder}")
            missing = [i for i in ids if not (self.root / "groundTruth" / part / f"{i}.mat").is_file()]
            if missing:
                raise DataError(f"bsds: {len(missing)} of {len(ids)} images of {part} have no ground truth, first "
                                f"{missing[0]} (no {self.root / 'groundTruth' / part / (missing[0] + '.mat')})")
            self.items += [(part, i) for i in ids]
        self.ids = [i for _, i in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def paths(self, index: int) -> tuple[Path, Path]:
        part, i = self.items[index]
        return self.root / "images" / part / f"{i}.jpg", self.root / "groundTruth" / part / f"{i}.mat"

    def annotators(self, index: int) -> np.ndarray:
        """uint8 [K,H,W]: every annotator's Boundaries of sample ``index``."""
        return read_boundaries(self.paths(index)[1])

    def load(self, index: int) -> dict[str, Any]:
        img_path, gt_path = self.paths(index)
        rgb = read_rgb(img_path)
        hw = rgb.shape[:2]
        stack = read_boundaries(gt_path, hw)
        sample: dict[str, Any] = {
            "image": image_tensor(rgb),
            "edge": map_tensor(edge_label(stack, self.edge_label, self.consensus)),
        }
        meta = {"id": self.items[index][1], "index": index, "size": tuple(hw), "dataset": self.info.name,
                "annotators": int(stack.shape[0])}
        if not self.augment:  # scored against every annotator at this size (tsn.engine.geometry.restore)
            meta["eval_targets"] = {"edge": torch.from_numpy(stack)}
        sample["meta"] = meta
        return sample
