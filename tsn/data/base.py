"""What every dataset shares: its description, the registry, the sample
pipeline (load -> joint transforms -> normalise -> label drop) and collation.

A sample is a dict keyed by task plus ``image`` and ``meta``; only the
requested tasks are present. Label formats and "no label" values follow each
task's label kind (:mod:`tsn.tasks`): 255 for class maps and for the binary
maps (edge, sal: the losses and the community treat 255 there as
unlabelled) and the zero vector / zero for vector fields / scalar maps
(normals / depth).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from tsn.data import transforms as T
from tsn.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from tsn.errors import ConfigError
from tsn.registry import Registry
from tsn.tasks import check_tasks, get_task

SPLIT_NAMES = ("train", "val", "test")

DATASETS: Registry = Registry("dataset")


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset that models, losses and metrics need."""

    name: str
    tasks: tuple[str, ...]
    splits: tuple[str, ...]
    num_classes: dict[str, int]  # semseg / parts output channels
    class_names: dict[str, tuple[str, ...]]
    edge_max_dist: float  # BSDS matching tolerance as a fraction of the image diagonal
    default_size: tuple[int, int] | None
    description: str = ""
    url: str = ""
    notes: dict[str, str] = field(default_factory=dict)


# Training augmentation presets: "default" (random scale, crop, flip, jitter;
# pads labels with "no label"), "release" (the TSN release's recipe,
# tsn/data/release_augment.py; pads labels with 0 as the release does) and
# "hed" (HED / RCF on BSDS500: scales 0.5/1/1.5, 16 rotations, flip, crop;
# tsn.data.transforms.hed_transform; pads labels with "no label").
AUGMENTATIONS = ("default", "release", "hed")


def parse_size(size: Any, minimum: int = 8, limit: str = "minimum") -> tuple[int, int] | None:
    """``None`` / ``"native"`` / ``"original"`` -> None (each image's own size), ``N`` or ``"N"`` ->
    (N, N), ``(H, W)``; a side below ``minimum`` is refused, naming the ``limit`` (the one parser
    of sizes: datasets, ``tsn.inference`` and the command lines)."""
    if size is None or (isinstance(size, str) and size.lower() in ("original", "native", "none")):
        return None
    if isinstance(size, str):
        try:
            size = int(size)
        except ValueError:
            raise ConfigError(f"size must be a number of pixels or 'native', got {size!r}") from None
    if isinstance(size, int):
        size = (size, size)
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ConfigError(f"size must be an int, (height, width) or 'native', got {size!r}") from None
    if min(h, w) < minimum:
        raise ConfigError(f"size {h}x{w} is below the {limit} of {minimum} px a side")
    return h, w


def invalid_label(task: str, like: torch.Tensor) -> torch.Tensor:
    """The all-unlabelled version of a label tensor (same shape and dtype)."""
    return get_task(task).label.invalid(like)


def drop_indices(n: int, fraction: float, seed: int, task: str) -> frozenset[int]:
    """Exactly round(fraction * n) indices, chosen per task from ``seed`` (stable across runs)."""
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"label_drop for {task} must be in [0, 1], got {fraction}")
    k = int(round(fraction * n))
    if k == 0:
        return frozenset()
    rng = np.random.default_rng([int(seed), zlib.crc32(task.encode())])
    return frozenset(int(i) for i in rng.permutation(n)[:k])


class MultiTaskDataset(Dataset):
    """Base class: subclasses set ``info`` and implement ``__len__`` and ``load``.

    ``load(index)`` returns the unaugmented sample: ``image`` float [3,H,W] in
    [0, 1], labels in their final format, and ``meta``. The transform then
    changes geometry and photometry jointly, the image is normalised with the
    ImageNet statistics, and dropped labels are blanked.
    """

    info: ClassVar[DatasetInfo]
    OPTIONS: ClassVar[tuple[str, ...]] = ()  # dataset-specific keyword options

    @classmethod
    def check_options(cls, options: dict, where: str) -> None:
        """Refuse bad values of this dataset's options (one line naming ``where.key``)."""

    def __init__(
        self,
        split: str,
        tasks,
        size=None,
        augment: bool = False,
        label_drop: float | dict[str, float] = 0.0,
        label_drop_seed: int = 0,
        transform=None,
        scale_range: tuple[float, float] = (0.5, 2.0),
        jitter: bool = True,
        eval_resize: str = "pad",
        augmentation: str = "default",
    ) -> None:

        self.split = split
        self.tasks = tuple(tasks)
        self.size = parse_size(size)
        self.augment = bool(augment)
        if eval_resize not in ("pad", "resize"):
            raise ConfigError(f"eval_resize must be 'pad' or 'resize', got {eval_resize!r}")
        if augmentation not in AUGMENTATIONS:
            raise ConfigError(f"unknown augmentation {augmentation!r}; valid: {', '.join(AUGMENTATIONS)}")
        if transform is None and self.augment and augmentation == "release":
            from tsn.data.release_augment import SIZE, ReleaseAugment

            transform = ReleaseAugment(self.size or SIZE)
        if transform is None and self.augment and augmentation == "hed":
            turned = [t for t in self.tasks if get_task(t).kind == "vector_field"]
            if turned:
                raise ConfigError(f"augmentation 'hed' rotates images and cannot turn the vectors of "
                                  f"{', '.join(turned)}; use default or release, or leave {', '.join(turned)} out")
            transform = T.hed_transform(self.size)
        if transform is None:
            transform = T.default_transform(
                train=self.augment,
                size=self.size,
                scale_range=scale_range,
                jitter=jitter,
                eval_resize=eval_resize,
                native_size=self.native_size(),
            )
        self.transform = transform
        self._label_drop = label_drop
        self._label_drop_seed = label_drop_seed
        self._dropped: dict[str, frozenset[int]] | None = None

    def native_size(self) -> tuple[int, int] | None:
        """The size every raw sample already has (None when images vary)."""
        return None

    # -- to implement
    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def load(self, index: int) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- pipeline
    def dropped(self) -> dict[str, frozenset[int]]:
        """Per task, the sample indices whose label is withheld (partial-label setting)."""
        if self._dropped is None:
            drop = self._label_drop
            if isinstance(drop, dict):
                bad = sorted(set(drop) - set(self.tasks))
                if bad:
                    raise ConfigError(f"label_drop names task(s) not loaded: {', '.join(bad)}; loaded: {', '.join(self.tasks)}")
                fractions = {t: float(drop.get(t, 0.0)) for t in self.tasks}
            else:
                fractions = {t: float(drop or 0.0) for t in self.tasks}
            self._dropped = {t: drop_indices(len(self), f, self._label_drop_seed, t) for t, f in fractions.items()}
        return self._dropped

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {self.info.name}/{self.split} of length {len(self)}")
        sample = self.load(index)
        sample = self.transform(sample)
        mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
        sample["image"] = (sample["image"] - mean) / std
        dropped = [t for t, idx in self.dropped().items() if index in idx]
        for t in dropped:
            sample[t] = invalid_label(t, sample[t])
        sample["meta"]["dropped"] = dropped
        return sample


def _pad_channels(key: str, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Labels [C,H,W] of one size but different C (e.g. edge maps of K annotators): padded to
    the largest C with channels of the label kind's no-label value (255 for binary maps, which
    the edge metric reads as "no such annotator"). Anything else is returned as it is."""
    from tsn.tasks import is_label

    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) < 2 or not is_label(key) or any(len(s) != 3 for s in shapes) or len({s[1:] for s in shapes}) != 1:
        return tensors
    c = max(s[0] for s in shapes)
    fill = get_task(key).label.pad_value
    return [t if t.shape[0] == c else torch.cat([t, torch.full((c - t.shape[0], *t.shape[1:]), fill, dtype=t.dtype)])
            for t in tensors]


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack every tensor key; keep ``meta`` as a list of dicts. Labels that differ only
    in their number of channels are padded with no-label channels first."""
    if not batch:
        raise ValueError("cannot collate an empty batch")
    out: dict[str, Any] = {}
    for key in batch[0]:
        if key == "meta":
            out["meta"] = [s["meta"] for s in batch]
            continue
        try:
            out[key] = torch.stack(_pad_channels(key, [s[key] for s in batch]))
        except RuntimeError as e:
            shapes = sorted({tuple(s[key].shape) for s in batch})
            raise ConfigError(
                f"cannot batch {key!r} of different shapes {shapes}; give the dataset a size or use batch size 1"
            ) from e
    return out


def build_dataset(name: str, root=None, split: str = "train", tasks=None, size=None, **options) -> MultiTaskDataset:
    """Build a registered dataset by name; bad names, tasks, splits or options raise ConfigError.

    ``size`` None means the dataset's default size; ``"original"`` keeps each
    image's own size (batch size 1 then, for datasets whose sizes vary).
    """
    cls = DATASETS.get(name)
    info: DatasetInfo = cls.info
    tasks = list(info.tasks) if tasks is None else list(tasks)
    check_tasks(tasks)
    missing = [t for t in tasks if t not in info.tasks]
    if missing:
        raise ConfigError(f"dataset {name!r} has no task(s) {', '.join(missing)}; available: {', '.join(info.tasks)}")
    if split not in info.splits:
        raise ConfigError(f"dataset {name!r} has no split {split!r}; valid: {', '.join(info.splits)}")
    check_dataset_options(name, options)
    if size is None:
        size = info.default_size
    size = parse_size(size)
    return cls(root=root, split=split, tasks=tasks, size=size, **options)


COMMON_OPTIONS = ("augment", "label_drop", "label_drop_seed", "transform", "scale_range", "jitter", "eval_resize",
                  "augmentation")


def check_dataset_options(name: str, options: dict, where: str = "") -> None:
    """Option names of dataset ``name`` (and their values, by the dataset's ``check_options``)."""
    cls = DATASETS.get(name, "data.name" if where else None)
    valid = set(COMMON_OPTIONS) | set(cls.OPTIONS)
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ConfigError(f"{where + ': ' if where else ''}unknown option(s) for dataset {name!r}: {', '.join(unknown)}; "
                          f"valid: {', '.join(sorted(valid))}")
    aug = options.get("augmentation")
    if aug is not None and aug not in AUGMENTATIONS:
        raise ConfigError(f"{where + ': ' if where else ''}unknown augmentation {aug!r}; valid: {', '.join(AUGMENTATIONS)}")
    cls.check_options(options, where or "options")


def list_datasets() -> list[str]:
    return DATASETS.names()


def dataset_info(name: str) -> DatasetInfo:
    return DATASETS.get(name).info
