"""NYUD-v2 multi-task: 795 train / 654 val images, tasks edge, semseg,
normals, depth; read in either of the two file layouts in circulation.

Layouts (``layout=`` option; ``auto`` looks at the first image's files):

- ``mtl`` (Multi-Task-Learning-PyTorch): ``segmentation/<id>.png``,
  ``depth/<id>.npy`` metres, ``normals/<id>.npy`` HxWx3 (uint8 arrays decoded
  2x/255-1), ``edge/<id>.npy`` {0,1};
- ``release`` (the NYUD_MT archive as ASTMT and the TSN release read it):
  ``segmentation/<id>.mat`` (key ``segmentation``, values 0..40),
  ``depth/<id>.mat`` (key ``depth``, metres), ``normals/<id>.jpg`` (decoded
  2x/255-1), ``edge/<id>.png`` (x/255, > 0.5 is an edge).

Class conventions (the dataset name, because the head's width follows it):

- ``nyud``: 40 classes, raw 0 = unlabelled -> 255 (ignored), others minus 1
  (the community's 40-way convention, MTL-PyTorch);
- ``nyud_release``: 41 classes, raw values kept, 0 is a class (ASTMT's and
  the TSN release's 41-way classification: their semseg mIoU is over 41).

Normals are rescaled to unit length; zero vectors stay invalid. Depth 0 or
non-finite is invalid.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tsn.data import disk
from tsn.data.base import DATASETS, DatasetInfo, MultiTaskDataset
from tsn.data.disk import (
    check_files,
    check_shape,
    find_root,
    image_tensor,
    map_tensor,
    read_npy,
    read_png,
    read_rgb,
    read_split,
    unit_normals,
)
from tsn.errors import DataError

URL = "https://data.vision.ee.ethz.ch/kmaninis/share/MTL/NYUD_MT.tgz"
LAYOUTS = {
    "mtl": "ROOT/{images/<id>.jpg, segmentation/<id>.png, depth/<id>.npy, normals/<id>.npy (HxWx3), "
           "edge/<id>.npy, gt_sets/{train,val}.txt}",
    "release": "ROOT/{images/<id>.jpg, segmentation/<id>.mat, depth/<id>.mat, normals/<id>.jpg, "
               "edge/<id>.png, gt_sets/{train,val}.txt}",
}
LAYOUT = " or ".join(f"{k}: {v}" for k, v in LAYOUTS.items())
FILES = {  # layout -> task -> (folder, extension)
    "mtl": {"edge": ("edge", ".npy"), "semseg": ("segmentation", ".png"), "normals": ("normals", ".npy"),
            "depth": ("depth", ".npy")},
    "release": {"edge": ("edge", ".png"), "semseg": ("segmentation", ".mat"), "normals": ("normals", ".jpg"),
                "depth": ("depth", ".mat")},
}
NYU40_CLASSES = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror", "floor mat",
    "clothes", "ceiling", "books", "refridgerator", "television", "paper", "towel", "shower curtain", "box",
    "whiteboard", "person", "night stand", "toilet", "sink", "lamp", "bathtub", "bag", "otherstructure",
    "otherfurniture", "otherprop",
)  # fmt: skip


@DATASETS.register("nyud")
class NYUD(MultiTaskDataset):
    info = DatasetInfo(
        name="nyud",
        tasks=("edge", "semseg", "normals", "depth"),
        splits=("train", "val"),
        num_classes={"semseg": 40},
        class_names={"semseg": NYU40_CLASSES},
        edge_max_dist=0.011,
        default_size=(480, 640),
        description="NYUD-v2 multi-task (795 train / 654 val images, 425x560)",
        url=URL,
        notes={"layout": LAYOUT},
    )
    OPTIONS = ("layout",)
    background_is_class = False  # the 40-way convention: raw 0 is unlabelled

    def __init__(self, root=None, split="train", tasks=info.tasks, size=(480, 640), layout: str = "auto",
                 **common: Any) -> None:
        super().__init__(split, tasks, size, **common)
        name = self.info.name
        if layout not in ("auto", *LAYOUTS):
            raise DataError(f"{name}: unknown layout {layout!r}; valid: auto, {', '.join(LAYOUTS)}")
        self.root = find_root(root, name, "NYUD_MT", "images", LAYOUT, URL)
        r = self.root
        self.ids = read_split(r / "gt_sets" / f"{split}.txt", name, LAYOUT)
        self.paths = {"image": [r / "images" / f"{i}.jpg" for i in self.ids]}
        check_files(self.paths["image"], name, LAYOUT)
        self.layout = detect_layout(r, self.ids[0], self.tasks, name) if layout == "auto" else layout
        for t in self.tasks:
            d, ext = FILES[self.layout][t]
            self.paths[t] = [r / d / f"{i}{ext}" for i in self.ids]
        check_files([p for ps in self.paths.values() for p in ps], name, LAYOUTS[self.layout])

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int) -> dict[str, Any]:
        p = {k: v[index] for k, v in self.paths.items()}
        rgb = read_rgb(p["image"])
        hw = rgb.shape[:2]
        sample: dict[str, Any] = {"image": image_tensor(rgb)}
        release = self.layout == "release"
        if "edge" in self.tasks:
            e = read_png(p["edge"]).astype(np.float32) / 255.0 if release else read_npy(p["edge"])
            e = np.squeeze(e)
            if e.ndim == 3:
                e = e[..., 0]
            check_shape(e, hw, p["edge"])
            sample["edge"] = map_tensor((e > 0.5).astype(np.float32))
        if "semseg" in self.tasks:
            s = read_mat(p["semseg"], "segmentation") if release else read_png(p["semseg"])
            if s.ndim == 3:
                s = s[..., 0]
            check_shape(s, hw, p["semseg"])
            s = s.astype(np.int64)
            if s.min() < 0 or s.max() > 40:
                raise DataError(f"{p['semseg']}: values {s.min()}..{s.max()}; expected 0 (unlabelled or "
                                "background) and the classes 1..40")
            if not self.background_is_class:
                s = np.where(s == 0, 255, s - 1)
            sample["semseg"] = map_tensor(s, dtype=torch.long, channel=False)
        if "normals" in self.tasks:
            n = read_rgb(p["normals"]) if release else read_npy(p["normals"])
            if n.ndim != 3 or n.shape[2] != 3:
                raise DataError(f"{p['normals']}: expected an HxWx3 array, got shape {n.shape}")
            check_shape(n, hw, p["normals"])
            if n.dtype == np.uint8:
                n = 2.0 * n.astype(np.float32) / 255.0 - 1.0
            sample["normals"] = unit_normals(n)
        if "depth" in self.tasks:
            d = read_mat(p["depth"], "depth") if release else read_npy(p["depth"])
            d = np.squeeze(d).astype(np.float32)
            check_shape(d, hw, p["depth"])
            d = np.where(np.isfinite(d) & (d > 0), d, 0).astype(np.float32)
            sample["depth"] = map_tensor(d)
        sample["meta"] = {"id": self.ids[index], "index": index, "size": tuple(hw), "dataset": self.info.name}
        return sample


@DATASETS.register("nyud_release")
class NYUDRelease(NYUD):
    info = replace(
        NYUD.info,
        name="nyud_release",
        num_classes={"semseg": 41},
        class_names={"semseg": ("background", *NYU40_CLASSES)},
        description="NYUD-v2 multi-task as the TSN release reads it (41 classes, 0 a class)",
    )
    background_is_class = True


def detect_layout(root: Path, first_id: str, tasks, name: str) -> str:
    """The layout whose files exist for the first listed image (every task asked for)."""
    found = [k for k, files in FILES.items()
             if all((root / d / f"{first_id}{ext}").is_file() for t, (d, ext) in files.items() if t in tasks)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise DataError(f"{name}: the files of image {first_id} in {root} match no known layout; "
                        f"expected {LAYOUT}")
    raise DataError(f"{name}: {root} holds both layouts ({', '.join(found)}); choose one with data.options.layout")


def read_mat(path: Path, key: str) -> np.ndarray:
    """Variable ``key`` of a .mat file (the release's NYUD labels and depth)."""
    m = disk.read_mat(path)
    if key not in m:
        raise DataError(f"{path}: no variable {key!r} (found: {disk.mat_variables(m)})")
    return np.asarray(m[key])
