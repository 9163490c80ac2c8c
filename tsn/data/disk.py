"""Shared helpers of the on-disk loaders: finding the root, checking files,
reading images, turning arrays into sample tensors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tsn.errors import DataError


def find_root(root, name: str, folder: str, marker: str, layout: str, url: str) -> Path:
    """``root`` itself or ``root/<folder>`` (the tarball's top folder), whichever holds ``marker``."""
    if root is None:
        env = os.environ.get(f"TSN_{name.upper()}_ROOT")
        if not env:
            raise DataError(
                f"{name}: no root given (root= or $TSN_{name.upper()}_ROOT); expected layout: {layout}; "
                f"published as {url} (python -m tsn.data.download {name} --root DIR)"
            )
        root = env
    root = Path(root).expanduser()
    for cand in (root, root / folder):
        if (cand / marker).exists():
            return cand
    raise DataError(
        f"{name}: {root} does not hold {marker} (nor {folder}/{marker}); expected layout: {layout}; "
        f"published as {url} (python -m tsn.data.download {name} --root DIR)"
    )


def read_split(path: Path, name: str, layout: str) -> list[str]:
    if not path.is_file():
        raise DataError(f"{name}: missing split file {path}; expected layout: {layout}")
    ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise DataError(f"{name}: split file {path} lists no images")
    return ids


def check_files(paths: list[Path], name: str, layout: str) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DataError(
            f"{name}: {len(missing)} of {len(paths)} expected files are missing, first {missing[0]}; expected layout: {layout}"
        )


def read_rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except OSError as e:
        raise DataError(f"unreadable image {path}: {e}") from None


def read_png(path: Path) -> np.ndarray:
    """Raw PNG values (palette indices for VOC-style label maps, not colours)."""
    try:
        with Image.open(path) as im:
            return np.asarray(im)
    except OSError as e:
        raise DataError(f"unreadable image {path}: {e}") from None


def read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f"unreadable array {path}: {e}") from None


def read_mat(path: Path) -> dict:
    """The variables of a MATLAB .mat file (v7 or older; v7.3 is HDF5 and refused by name)."""
    import scipy.io as sio

    try:
        return sio.loadmat(str(path))
    except NotImplementedError:
        raise DataError(f"unreadable .mat file {path}: MATLAB v7.3 (HDF5) files are not read; save it with -v7") from None
    except Exception as e:  # noqa: BLE001  (scipy raises many kinds for a damaged file)
        raise DataError(f"unreadable .mat file {path}: {type(e).__name__}: {e}") from None


def mat_variables(m: dict) -> str:
    """The names of a .mat file's variables, for an error line."""
    return ", ".join(k for k in m if not k.startswith("__")) or "none"


def check_shape(arr: np.ndarray, hw: tuple[int, int], path: Path) -> None:
    if tuple(arr.shape[:2]) != tuple(hw):
        raise DataError(f"{path} is {arr.shape[0]}x{arr.shape[1]} but its image is {hw[0]}x{hw[1]}")


def unit_normals(n: np.ndarray) -> np.ndarray:
    """HxWx3 -> [3,H,W] float32 unit vectors; zero (or non-finite) vectors stay zero (= no label)."""
    n = np.nan_to_num(n.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    norm = np.sqrt((n * n).sum(-1, keepdims=True))
    n = np.where(norm > 1e-6, n / np.maximum(norm, 1e-6), 0.0).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(n.transpose(2, 0, 1)))


def image_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float() / 255


def map_tensor(a: np.ndarray, dtype=torch.float32, channel: bool = True) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(a)).to(dtype)
    return t[None] if channel else t
