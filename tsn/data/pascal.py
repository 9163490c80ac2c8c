"""``name="pascal"``: PASCAL-Context in the multi-task layout of the community
(ASTMT / MTI-Net / "Multi-Task Learning for Dense Prediction Tasks"), the
PASCAL_MT.tgz tarball. Five tasks: edge, semseg (21 VOC classes), parts
(6 human parts + background), normals and saliency (both distilled).

Decoding follows that code so numbers stay comparable:
- edge: thinned non-zero Laplacian of ``pascal-context/trainval/<id>.mat``
  ``LabelMap`` (459 Context classes);
- semseg: ``semseg/VOC12/<id>.png``, else ``semseg/pascal-context/<id>.png``;
  values as stored (0 background .. 20, 255 ignore);
- parts: ``human_parts/<id>.mat`` (PASCAL-Part ``anno``): every person
  (class_ind 15) that has parts is drawn, parts mapped to 6 groups; person
  pixels covered by no part are background (0). Images without such a person
  get an all-255 map, as the community's AddIgnoreRegions does;
- normals: ``normals_distill/<id>.png`` decoded 2x/255-1, kept only on pixels
  whose Context class is in :data:`NORMAL_CLASSES`, zero elsewhere. We also
  rescale the kept vectors to unit length (8-bit storage leaves them ~1%
  off), which the community does not; angles are unchanged;
- sal: ``sal_distill/<id>.png``, x/255 > 0.5.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import io as sio

from tsn.data.base import DATASETS, DatasetInfo, MultiTaskDataset
from tsn.data.disk import (
    check_files,
    check_shape,
    find_root,
    image_tensor,
    map_tensor,
    read_png,
    read_rgb,
    read_split,
    unit_normals,
)
from tsn.data.imageops import label_map_edges
from tsn.errors import ConfigError, DataError

URL = "https://data.vision.ee.ethz.ch/kmaninis/share/MTL/PASCAL_MT.tgz"
LAYOUT = (
    "ROOT/{JPEGImages/<id>.jpg, ImageSets/Context/{train,val}.txt, pascal-context/trainval/<id>.mat, "
    "semseg/VOC12/<id>.png (or semseg/pascal-context/<id>.png), human_parts/<id>.mat, "
    "normals_distill/<id>.png, sal_distill/<id>.png}"
)

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
PART_NAMES = ("background", "head", "torso", "upper_arm", "lower_arm", "upper_leg", "lower_leg")
PERSON_CLASS_IND = 15
PART_GROUP = {
    **dict.fromkeys(("hair", "head", "lear", "rear", "leye", "reye", "lebrow", "rebrow", "mouth", "nose"), 1),
    **dict.fromkeys(("torso", "neck"), 2),
    **dict.fromkeys(("luarm", "ruarm"), 3),
    **dict.fromkeys(("llarm", "rlarm", "lhand", "rhand"), 4),
    **dict.fromkeys(("luleg", "ruleg"), 5),
    **dict.fromkeys(("llleg", "rlleg", "lfoot", "rfoot"), 6),
}

# Context (459-class LabelMap) ids on which distilled normals are kept: the
# Context classes whose names also name an NYU-v2 class (the community's
# nyu_classes.json x context_classes.json, 'unknown' excluded), plus
# tvmonitor (427), which the community adds by hand. 170 classes.
NORMAL_CLASSES = frozenset((
    3, 4, 6, 9, 10, 11, 13, 15, 17, 18, 22, 23, 29, 30, 33, 34, 36, 37, 38, 39, 41, 43, 46, 49, 50, 51, 53, 55,
    56, 59, 61, 62, 65, 66, 68, 69, 72, 73, 78, 83, 84, 85, 87, 88, 95, 96, 101, 104, 105, 107, 111, 113, 115,
    122, 124, 135, 141, 142, 143, 146, 150, 154, 157, 158, 159, 165, 172, 174, 181, 183, 184, 191, 193, 195,
    197, 199, 202, 213, 215, 216, 219, 220, 223, 225, 228, 230, 232, 233, 238, 239, 242, 243, 246, 250, 251,
    252, 255, 260, 261, 263, 269, 272, 273, 275, 281, 283, 284, 285, 286, 287, 288, 290, 291, 292, 293, 295,
    304, 307, 309, 310, 314, 315, 319, 323, 329, 330, 331, 336, 342, 345, 349, 350, 351, 352, 355, 357, 368,
    370, 371, 374, 379, 380, 383, 384, 397, 401, 403, 405, 407, 408, 411, 412, 413, 414, 417, 419, 421, 423,
    429, 430, 432, 440, 441, 442, 443, 444, 446, 454, 457, 427,
))  # fmt: skip


def _field(struct, name: str, pos: int):
    """A field of a loadmat struct element by name (positionally as the community does, if unnamed)."""
    names = struct.dtype.names or ()
    return struct[name] if name in names else struct[pos]


def _text(x) -> str:
    a = np.asarray(x).ravel()
    return str(a[0]) if a.size else ""


def load_label_map(path: Path) -> np.ndarray:
    try:
        return np.asarray(sio.loadmat(str(path))["LabelMap"])
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"unreadable PASCAL-Context label map {path} (need key 'LabelMap'): {e}") from None


def load_human_parts(path: Path, hw: tuple[int, int]) -> np.ndarray:
    """PASCAL-Part ``anno`` -> int64 HxW map of 6 part groups (0 elsewhere), or all 255 without persons."""
    try:
        anno = sio.loadmat(str(path))["anno"][0, 0]
        objects = np.asarray(_field(anno, "objects", 1)).ravel()
    except (OSError, ValueError, KeyError, IndexError) as e:
        raise DataError(f"unreadable PASCAL-Part file {path} (need struct 'anno' with 'objects'): {e}") from None
    target = None
    for obj in objects:
        cls_ind = int(np.asarray(_field(obj, "class_ind", 1)).ravel()[0])
        parts = np.asarray(_field(obj, "parts", 3)).ravel()
        if cls_ind != PERSON_CLASS_IND or parts.size == 0:
            continue
        if target is None:
            target = np.zeros(hw, np.int64)
        for part in parts:
            name = _text(_field(part, "part_name", 0))
            if name not in PART_GROUP:
                raise DataError(f"{path}: unknown person part {name!r}; known: {', '.join(sorted(PART_GROUP))}")
            mask = np.asarray(_field(part, "mask", 1)).astype(bool)
            check_shape(mask, hw, path)
            target[mask] = PART_GROUP[name]
    if target is None:
        return np.full(hw, 255, np.int64)
    return target


@DATASETS.register("pascal")
class PascalContext(MultiTaskDataset):
    info = DatasetInfo(
        name="pascal",
        tasks=("edge", "semseg", "parts", "normals", "sal"),
        splits=("train", "val"),
        num_classes={"semseg": 21, "parts": 7},
        class_names={"semseg": VOC_CLASSES, "parts": PART_NAMES},
        edge_max_dist=0.0075,
        default_size=(512, 512),
        description="PASCAL-Context multi-task (4998 train / 5105 val images)",
        url=URL,
        notes={"layout": LAYOUT, "normals": "kept on NORMAL_CLASSES only; unit length"},
    )

    OPTIONS = ("edge_label",)
    EDGE_LABELS = ("laplacian", "seism")

    @classmethod
    def check_options(cls, options: dict, where: str) -> None:
        if "edge_label" in options and options["edge_label"] not in cls.EDGE_LABELS:
            raise ConfigError(f"{where}.edge_label: {options['edge_label']!r} is not valid; valid: {', '.join(cls.EDGE_LABELS)}")

    def __init__(self, root=None, split="train", tasks=info.tasks, size=(512, 512), edge_label: str = "laplacian",
                 **common: Any) -> None:
        super().__init__(split, tasks, size, **common)
        self.check_options({"edge_label": edge_label}, "pascal")
        # laplacian: the community's training label (thinned non-zero Laplacian of the
        # LabelMap); seism: SEISM's ground truth, thin(seg2bmap(LabelMap)), for paper-exact scoring
        self.edge_label = edge_label
        self.root = find_root(root, "pascal", "PASCAL_MT", "JPEGImages", LAYOUT, URL)
        r = self.root
        self.ids = read_split(r / "ImageSets" / "Context" / f"{split}.txt", "pascal", LAYOUT)
        self.paths: dict[str, list[Path]] = {"image": [r / "JPEGImages" / f"{i}.jpg" for i in self.ids]}
        if "edge" in self.tasks or "normals" in self.tasks:
            self.paths["context"] = [r / "pascal-context" / "trainval" / f"{i}.mat" for i in self.ids]
        if "semseg" in self.tasks:
            self.paths["semseg"] = [self._semseg_path(i) for i in self.ids]
        if "parts" in self.tasks:
            self.paths["parts"] = [r / "human_parts" / f"{i}.mat" for i in self.ids]
        if "normals" in self.tasks:
            self.paths["normals"] = [r / "normals_distill" / f"{i}.png" for i in self.ids]
        if "sal" in self.tasks:
            self.paths["sal"] = [r / "sal_distill" / f"{i}.png" for i in self.ids]
        check_files([p for ps in self.paths.values() for p in ps], "pascal", LAYOUT)

    def _semseg_path(self, i: str) -> Path:
        voc = self.root / "semseg" / "VOC12" / f"{i}.png"
        return voc if voc.is_file() else self.root / "semseg" / "pascal-context" / f"{i}.png"

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int) -> dict[str, Any]:
        p = {k: v[index] for k, v in self.paths.items()}
        rgb = read_rgb(p["image"])
        hw = rgb.shape[:2]
        sample: dict[str, Any] = {"image": image_tensor(rgb)}
        label_map = None
        if "context" in p:
            label_map = load_label_map(p["context"])
            check_shape(label_map, hw, p["context"])
        if "edge" in self.tasks:
            if self.edge_label == "seism":
                from tsn.metrics.boundary import seg2bmap, thin

                sample["edge"] = map_tensor(thin(seg2bmap(label_map)).astype(np.float32))
            else:
                sample["edge"] = map_tensor(label_map_edges(label_map))
        if "semseg" in self.tasks:
            seg = read_png(p["semseg"])
            check_shape(seg, hw, p["semseg"])
            sample["semseg"] = map_tensor(seg.astype(np.int64), dtype=torch.long, channel=False)
        if "parts" in self.tasks:
            sample["parts"] = map_tensor(load_human_parts(p["parts"], hw), dtype=torch.long, channel=False)
        if "normals" in self.tasks:
            raw = read_png(p["normals"])[..., :3].astype(np.float32)
            check_shape(raw, hw, p["normals"])
            n = 2.0 * raw / 255.0 - 1.0
            keep = np.isin(label_map, list(NORMAL_CLASSES))
            n[~keep] = 0
            sample["normals"] = unit_normals(n)
        if "sal" in self.tasks:
            sal = read_png(p["sal"])
            if sal.ndim == 3:
                sal = sal[..., 0]
            check_shape(sal, hw, p["sal"])
            sample["sal"] = map_tensor((sal.astype(np.float32) / 255.0 > 0.5).astype(np.float32))
        sample["meta"] = {"id": self.ids[index], "index": index, "size": tuple(hw), "dataset": "pascal"}
        return sample
