"""``name="synthetic"``: the embedded six-task scene generator as a dataset.

Scene ``i`` of split ``s`` is a pure function of ``(seed, s, i, size)``, so
nothing has to be stored and every run sees the same data; the three splits
draw from disjoint seed streams. See :mod:`tsn.data.scenes` for the classes,
the saliency rule and the label conventions.

New tasks plug in with one hook: :data:`SYNTHETIC_LABELS` maps a task name
(registered in :mod:`tsn.tasks`) to a function of the scene's arrays that
returns its label; the dataset then offers that task like its own six.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tsn.data.base import DATASETS, DatasetInfo, MultiTaskDataset
from tsn.data.scenes import CLASS_NAMES, FRAMINGS, PART_NAMES, generate
from tsn.errors import ConfigError, DataError
from tsn.tasks import ALL_TASKS, get_task

SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
DEFAULT_LENGTH = {"train": 2000, "val": 250, "test": 250}
_DOMAIN = 0x75E  # keeps these seed streams apart from any other use of the same seed


def scene_arrays(
    seed: int, split: str, index: int, size: tuple[int, int], framing: str = "subject"
) -> dict[str, np.ndarray]:
    """The raw numpy render of one scene (all tasks plus ``instances``)."""
    return generate((_DOMAIN, int(seed), SPLIT_CODE[split], int(index)), size[0], size[1], framing)


def _check_framing(framing: Any, name: str) -> None:
    if framing not in FRAMINGS:
        raise ConfigError(f"{name} must be one of {', '.join(FRAMINGS)}, got {framing!r}")


#: The dataset hook for new tasks: name -> fn(scene) -> numpy label ([H,W] or [C,H,W], in the
#: task's label format). ``scene`` holds ``image`` (float HxWx3 in [0, 1]), ``semseg``,
#: ``parts``, ``normals`` [3,H,W], ``depth``, ``edge`` and ``sal`` of one scene at its size.
SYNTHETIC_LABELS: dict[str, Callable[[dict[str, np.ndarray]], np.ndarray]] = {}


def to_sample(arr: dict[str, np.ndarray], tasks) -> dict[str, torch.Tensor]:
    """numpy render -> tensors in the shared sample format (only ``tasks``), each as its label kind says."""
    out = {"image": torch.from_numpy(np.ascontiguousarray(arr["image"].transpose(2, 0, 1))).float()}
    for t in tasks:
        a = arr[t] if t in arr else SYNTHETIC_LABELS[t](arr)
        out[t] = get_task(t).label.to_tensor(a)
    return out


class _Info:
    """``SyntheticScenes.info``: the static facts plus the tasks of :data:`SYNTHETIC_LABELS`."""

    def __init__(self, info: DatasetInfo) -> None:
        self.base = info

    def __get__(self, obj, cls=None) -> DatasetInfo:
        extra = tuple(t for t in SYNTHETIC_LABELS if t not in self.base.tasks)
        return dataclasses.replace(self.base, tasks=self.base.tasks + extra) if extra else self.base


@DATASETS.register("synthetic")
class SyntheticScenes(MultiTaskDataset):
    info = _Info(DatasetInfo(
        name="synthetic",
        tasks=ALL_TASKS,
        splits=("train", "val", "test"),
        num_classes={"semseg": len(CLASS_NAMES), "parts": len(PART_NAMES)},
        class_names={"semseg": CLASS_NAMES, "parts": PART_NAMES},
        edge_max_dist=0.011,  # about 2 px at 128x128: the labels are exact, the network's output is not
        default_size=(128, 128),
        description="procedural ray-cast rooms with 3-8 objects of 7 shape classes; exact labels for all six tasks",
        notes={
            "sal": "the object instance (classes 3-9) with the most visible pixels; all zero if none",
            "parts": "PASCAL 6 parts + background on person figures; all 255 when no person is visible",
            "normals": "camera frame: x right, y up, z towards the camera; zero on the sky",
            "depth": "z-depth in metres; 0 on the sky",
            "edge": "1-px boundaries between instances, on the nearer side",
        },
    ))
    OPTIONS = ("length", "seed", "cache", "framing")

    @classmethod
    def check_options(cls, options: dict, where: str) -> None:
        """``length``: samples per split, an int or {split: int}, each >= 1 (an
        empty split would train or validate on nothing); ``seed`` an int;
        ``framing`` one of :data:`tsn.data.scenes.FRAMINGS`."""
        length = options.get("length")
        items = length.items() if isinstance(length, dict) else ([] if length is None else [(None, length)])
        for split, n in items:
            key = f"{where}.length" + (f".{split}" if split is not None else "")
            if split is not None and split not in DEFAULT_LENGTH:
                raise ConfigError(f"{key}: unknown split {split!r}; valid: {', '.join(DEFAULT_LENGTH)}")
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise ConfigError(f"{key} must be an integer >= 1 (samples in the split), got {n!r}")
        seed = options.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ConfigError(f"{where}.seed must be an integer >= 0, got {seed!r}")
        _check_framing(options.get("framing", "subject"), f"{where}.framing")

    def __init__(
        self,
        root=None,
        split: str = "train",
        tasks=ALL_TASKS,
        size=(128, 128),
        length: int | dict[str, int] | None = None,
        seed: int = 0,
        cache: bool | str | os.PathLike = False,
        framing: str = "subject",
        scale_range=(0.75, 1.5),
        **common: Any,
    ) -> None:
        size = size or (128, 128)
        super().__init__(split, tasks, size, scale_range=scale_range, **common)
        if isinstance(length, dict):
            length = length.get(split, DEFAULT_LENGTH[split])
        self.length = DEFAULT_LENGTH[split] if length is None else int(length)
        if self.length < 0:
            raise ConfigError(f"length must be >= 0, got {self.length}")
        self.seed = int(seed)
        _check_framing(framing, "framing")
        self.framing = framing
        self._memory: dict[int, dict[str, np.ndarray]] | None = None
        self._disk: Path | None = None
        if cache is True or cache == "memory":
            self._memory = {}
        elif cache:
            if cache == "disk":
                if root is None:
                    raise ConfigError("cache='disk' needs root= (the cache folder), or pass the folder as cache=")
                cache = root
            h, w = self.size
            tag = "" if framing == "room" else f"-{framing}"  # caches written before framing existed are "room"
            self._disk = Path(cache) / f"synthetic-{split}-seed{self.seed}-{h}x{w}{tag}"
            self._disk.mkdir(parents=True, exist_ok=True)

    def native_size(self):
        return self.size

    def __len__(self) -> int:
        return self.length

    def _arrays(self, index: int) -> dict[str, np.ndarray]:
        if self._memory is not None and index in self._memory:
            return self._memory[index]
        path = self._disk / f"{index:07d}.npz" if self._disk is not None else None
        if path is not None and path.exists():
            try:
                with np.load(path) as z:
                    arr = {k: z[k] for k in z.files}
            except (OSError, ValueError) as e:
                raise DataError(f"unreadable cache file {path} ({e}); delete it to regenerate") from None
        else:
            arr = scene_arrays(self.seed, self.split, index, self.size, self.framing)
            arr = {  # compact but exact storage
                "image": arr["image"],
                "semseg": arr["semseg"].astype(np.uint8),
                "parts": arr["parts"].astype(np.uint8),
                "normals": arr["normals"],
                "depth": arr["depth"],
                "edge": arr["edge"],
                "sal": arr["sal"],
            }
            if path is not None:
                tmp = path.with_suffix(".tmp.npz")
                np.savez(tmp, **arr)
                os.replace(tmp, path)
        if self._memory is not None:
            self._memory[index] = arr
        return arr

    def load(self, index: int) -> dict[str, Any]:
        arr = dict(self._arrays(index))
        arr["image"] = arr["image"].astype(np.float32) / 255
        sample = to_sample(arr, self.tasks)
        h, w = self.size
        sample["meta"] = {"id": f"{self.split}-{self.seed}-{index:06d}", "index": index, "size": (h, w), "dataset": "synthetic"}
        return sample
