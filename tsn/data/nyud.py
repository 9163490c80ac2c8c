"""``name="nyud"``: NYUD-v2 in the community's multi-task layout (NYUD_MT.tgz):
795 train / 654 val images, tasks edge, semseg (40 classes), normals, depth.

Decoding as in that code: ``segmentation/<id>.png`` 0 -> 255 (unlabelled),
other values minus 1; ``depth/<id>.npy`` metres (0 = invalid);
``normals/<id>.npy`` HxWx3 (rescaled to unit length here; zero vectors stay
invalid; uint8 arrays are decoded 2x/255-1); ``edge/<id>.npy`` {0,1}.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

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
LAYOUT = (
    "ROOT/{images/<id>.jpg, segmentation/<id>.png, depth/<id>.npy, normals/<id>.npy (HxWx3), "
    "edge/<id>.npy, gt_sets/{train,val}.txt}"
)
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
    DIRS = {"edge": ("edge", ".npy"), "semseg": ("segmentation", ".png"), "normals": ("normals", ".npy"), "depth": ("depth", ".npy")}

    def __init__(self, root=None, split="train", tasks=info.tasks, size=(480, 640), **common: Any) -> None:
        super().__init__(split, tasks, size, **common)
        self.root = find_root(root, "nyud", "NYUD_MT", "images", LAYOUT, URL)
        r = self.root
        self.ids = read_split(r / "gt_sets" / f"{split}.txt", "nyud", LAYOUT)
        self.paths = {"image": [r / "images" / f"{i}.jpg" for i in self.ids]}
        for t in self.tasks:
            d, ext = self.DIRS[t]
            self.paths[t] = [r / d / f"{i}{ext}" for i in self.ids]
        check_files([p for ps in self.paths.values() for p in ps], "nyud", LAYOUT)

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int) -> dict[str, Any]:
        p = {k: v[index] for k, v in self.paths.items()}
        rgb = read_rgb(p["image"])
        hw = rgb.shape[:2]
        sample: dict[str, Any] = {"image": image_tensor(rgb)}
        if "edge" in self.tasks:
            e = np.squeeze(read_npy(p["edge"]))
            check_shape(e, hw, p["edge"])
            sample["edge"] = map_tensor((e > 0.5).astype(np.float32))
        if "semseg" in self.tasks:
            s = read_png(p["semseg"])
            if s.ndim == 3:
                s = s[..., 0]
            check_shape(s, hw, p["semseg"])
            s = s.astype(np.int64)
            if s.max() > 40:
                raise DataError(f"{p['semseg']}: value {s.max()} > 40; expected 0 (unlabelled) and 1..40")
            sample["semseg"] = map_tensor(np.where(s == 0, 255, s - 1), dtype=torch.long, channel=False)
        if "normals" in self.tasks:
            n = read_npy(p["normals"])
            if n.ndim != 3 or n.shape[2] != 3:
                raise DataError(f"{p['normals']}: expected an HxWx3 array, got shape {n.shape}")
            check_shape(n, hw, p["normals"])
            if n.dtype == np.uint8:
                n = 2.0 * n.astype(np.float32) / 255.0 - 1.0
            sample["normals"] = unit_normals(n)
        if "depth" in self.tasks:
            d = np.squeeze(read_npy(p["depth"])).astype(np.float32)
            check_shape(d, hw, p["depth"])
            d = np.where(np.isfinite(d) & (d > 0), d, 0).astype(np.float32)
            sample["depth"] = map_tensor(d)
        sample["meta"] = {"id": self.ids[index], "index": index, "size": tuple(hw), "dataset": "nyud"}
        return sample
