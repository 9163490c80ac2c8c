"""Edge maps and edge ground truth as detectors and benchmarks store them, and the evaluation of
a folder of them (``python -m eval edges`` is the command line over :func:`evaluate_folder`).

Predictions, ``<id>.<ext>`` (what the field publishes):

* ``.png``: 8-bit grayscale (k / 255; the TSN release, HED, RCF) or 16-bit grayscale
  (k / 65535). A 16-bit file whose values all lie in 0..255 is refused: it is an 8-bit map
  in a 16-bit container, and read as 16 bits it would be a nearly black map.
* ``.npy``: a 2-D float array in [0, 1] (uint8 / uint16 arrays as the PNGs).
* ``.mat``: a BSDS segmentation hierarchy ``ucm2`` (double size, (2h+1) x (2w+1), read as the
  Berkeley benchmark reads it: ``ucm2(3:2:end, 3:2:end)``), or one 2-D numeric variable in
  [0, 1] (any name).

Ground truth, ``<id>.mat`` or ``<id>.png``: a BSDS500 ``groundTruth`` cell (one
``Segmentation`` / ``Boundaries`` struct per annotator), SEISM's ``gt_seg`` cell of
segmentations, a PASCAL-Context ``LabelMap``, or a binary boundary PNG (non-zero = boundary).
The protocol picks what it builds each annotator from (:meth:`EdgeProtocol.annotator`).

The set scored is every ground-truth id of the folder, or the ids of an ``ids`` file (e.g.
a split list); a prediction missing for one of them is refused unless ``partial`` is asked for,
and a partial score says so (``partial``, ``missing``) in its result.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from tsn.data.disk import mat_variables, read_mat, read_npy, read_png
from tsn.errors import DataError
from tsn.metrics.boundary import seg2bmap
from tsn.metrics.edge_protocols import EdgeProtocol, get_protocol

PREDICTION_SUFFIXES = (".png", ".npy", ".mat")
GROUND_TRUTH_SUFFIXES = (".mat", ".png")


def _shown(ids: Sequence[str], n: int = 5) -> str:
    return ", ".join(ids[:n]) + (f" and {len(ids) - n} more" if len(ids) > n else "")


# ---------------------------------------------------------------- predictions


def _unit_range(a: np.ndarray, path: Path, what: str) -> np.ndarray:
    a = np.asarray(a, np.float64)
    if not np.isfinite(a).all():
        raise DataError(f"{path}: {what} holds NaN or infinite values")
    lo, hi = float(a.min(initial=0.0)), float(a.max(initial=0.0))
    if lo < 0 or hi > 1:
        raise DataError(f"{path}: {what} has values in [{lo:g}, {hi:g}]; a soft edge map must lie in [0, 1]")
    return a


def _from_integers(a: np.ndarray, path: Path, what: str) -> np.ndarray:
    """uint8 as it is (k / 255 in the protocol); 16-bit as k / 65535 (refusing 8-bit values in it)."""
    if a.dtype == np.uint8:
        return a
    if a.dtype in (np.uint16, np.int32, np.int64) and a.size and 0 <= a.min() and a.max() <= 65535:
        if 0 < a.max() <= 255:
            raise DataError(f"{path}: a 16-bit {what} whose values all lie in 0..255 (an 8-bit map saved as 16 "
                            "bits? read as 16 bits it is nearly black): save it as 8-bit, or scale it to 0..65535")
        return a.astype(np.float64) / 65535.0
    raise DataError(f"{path}: {what} of {a.dtype} values in [{a.min()}, {a.max()}]; valid: 8-bit or 16-bit "
                    "unsigned integers, or floats in [0, 1]")


def _soft(a: np.ndarray, path: Path, what: str) -> np.ndarray:
    """A stored map as the protocols take it: floats (and booleans) in [0, 1], or integers."""
    if a.dtype.kind == "f" or a.dtype == bool:
        return _unit_range(a, path, what)
    return _from_integers(a, path, what)


def read_prediction(path: Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A soft edge map: uint8 (k / 255) or float64 in [0, 1]. ``shape``: the ground truth's
    (h, w), which a double-size ``ucm2`` must match as (2h+1, 2w+1)."""
    path = Path(path)
    if path.suffix == ".png":
        from PIL import Image

        try:
            with Image.open(path) as im:
                mode = im.mode
                a = np.array(im)
        except Exception as e:  # noqa: BLE001  (PIL raises many kinds)
            raise DataError(f"{path}: cannot read the prediction ({type(e).__name__}: {e})") from None
        if a.ndim != 2 or mode not in ("L", "I;16", "I;16B", "I;16L", "I"):
            raise DataError(f"{path}: expected an 8-bit or 16-bit grayscale PNG, got mode {mode} {a.dtype} {a.shape}")
        return _from_integers(a, path, "PNG")
    if path.suffix == ".npy":
        a = read_npy(path)
        if a.ndim != 2:
            raise DataError(f"{path}: expected a 2-D edge map, got shape {a.shape}")
        return _soft(a, path, "the map" if a.dtype.kind == "f" else "array")
    if path.suffix == ".mat":
        m = read_mat(path)
        if "ucm2" in m:
            u = np.asarray(m["ucm2"])
            if u.ndim != 2 or u.dtype.kind not in "fiub":
                raise DataError(f"{path}: ucm2 must be a 2-D numeric array, got {u.dtype} {u.shape}")
            if shape is not None and u.shape != (2 * shape[0] + 1, 2 * shape[1] + 1):
                raise DataError(f"{path}: ucm2 is {u.shape[0]}x{u.shape[1]}, but the ground truth's "
                                f"{shape[0]}x{shape[1]} needs the double size {2 * shape[0] + 1}x{2 * shape[1] + 1}")
            return _unit_range(u[2::2, 2::2], path, "ucm2")
        if "segs" in m:
            raise DataError(f"{path}: a cell of segmentations ('segs') is scored by the benchmark one threshold per "
                            "segmentation, which this reader does not do; store a ucm2 or a soft map instead")
        maps = {k: np.asarray(v) for k, v in m.items()
                if not k.startswith("__") and isinstance(v, np.ndarray) and v.ndim == 2 and v.dtype.kind in "fiub"}
        if len(maps) != 1:
            raise DataError(f"{path}: expected 'ucm2' or exactly one 2-D numeric variable, found: {mat_variables(m)}")
        (name, a), = maps.items()
        return _soft(a, path, name)
    raise DataError(f"{path}: not a prediction file; valid: {', '.join(PREDICTION_SUFFIXES)}")


# ---------------------------------------------------------------- ground truth


def _field(rec, name: str):
    names = rec.dtype.names or ()
    if name not in names:
        return None
    v = np.asarray(rec[name])
    while v.dtype == object and v.size == 1:  # MATLAB nests a struct's field in 1x1 cells
        v = np.asarray(v.ravel()[0])
    return v


def read_annotations(path: Path, loaded: dict | None = None) -> list[tuple[np.ndarray | None, np.ndarray | None]]:
    """The (Segmentation, Boundaries) of every annotator of a BSDS500 ``groundTruth`` .mat (or
    SEISM's ``gt_seg`` copy, whose Boundaries are ``seg2bmap``); all 2-D and of one size.
    ``loaded``: the file's variables when the caller has read them already."""
    path = Path(path)
    m = read_mat(path) if loaded is None else loaded
    out: list[tuple[np.ndarray | None, np.ndarray | None]] = []
    if "groundTruth" in m:
        try:
            for el in np.asarray(m["groundTruth"]).ravel():
                rec = el
                while isinstance(rec, np.ndarray) and rec.dtype.names is None and rec.size == 1:
                    rec = rec.ravel()[0]  # cell -> struct array
                rec = rec.ravel()[0] if isinstance(rec, np.ndarray) and rec.size == 1 else rec
                seg, bdry = _field(rec, "Segmentation"), _field(rec, "Boundaries")
                if seg is None and bdry is None:
                    raise KeyError
                out.append((seg, bdry))
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            raise DataError(f"{path}: groundTruth is not a cell of structs with Segmentation / Boundaries") from None
    elif "gt_seg" in m:  # SEISM's own copy of BSDS500: a cell of segmentations, one per annotator
        segs = [np.asarray(x) for x in np.asarray(m["gt_seg"], dtype=object).ravel()]
        out = [(x, seg2bmap(x) if x.ndim == 2 else None) for x in segs]
    else:
        raise DataError(f"{path}: no groundTruth (BSDS500) or gt_seg (SEISM) cell in it (variables: {mat_variables(m)})")
    if not out:
        raise DataError(f"{path}: the ground truth holds no annotator")
    shapes = {a.shape for pair in out for a in pair if a is not None}
    if any(a is not None and a.ndim != 2 for pair in out for a in pair) or len(shapes) != 1:
        raise DataError(f"{path}: the annotators' maps are not 2-D maps of one size (shapes: "
                        f"{', '.join(sorted(str(s) for s in shapes))})")
    return out


def read_ground_truth(path: Path, protocol: str | EdgeProtocol) -> list[np.ndarray]:
    """The boolean boundary maps (one per annotator) the protocol matches against (thinned,
    where the protocol thins, by :meth:`EdgeProtocol.image_counts`)."""
    path = Path(path)
    protocol = get_protocol(protocol)
    if path.suffix == ".png":
        a = read_png(path)
        if a.ndim != 2:
            raise DataError(f"{path}: expected a single-channel boundary PNG, got shape {a.shape}")
        return [a > 0]
    m = read_mat(path)
    if "LabelMap" in m and "groundTruth" not in m:
        lab = np.asarray(m["LabelMap"])
        if lab.ndim != 2:
            raise DataError(f"{path}: LabelMap must be 2-D, got {lab.shape}")
        return [seg2bmap(lab)]
    if "groundTruth" not in m and "gt_seg" not in m:
        raise DataError(f"{path}: neither groundTruth (BSDS500) nor LabelMap (PASCAL-Context) in it "
                        f"(variables: {mat_variables(m)})")
    try:
        return [protocol.annotator(seg, bdry, where=f"{path}: annotator {i + 1}")
                for i, (seg, bdry) in enumerate(read_annotations(path, m))]
    except ValueError as e:
        raise DataError(str(e)) from None


# ---------------------------------------------------------------- a folder


def _by_id(folder: Path, suffixes: Sequence[str], what: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.suffix in suffixes and p.is_file():
            if p.stem in found:
                raise DataError(f"{folder}: two {what} files for {p.stem} ({found[p.stem].name}, {p.name}); keep one")
            found[p.stem] = p
    return found


def read_ids(path: Path) -> list[str]:
    """Image ids, one per line (a split list such as PASCAL's val.txt); blank lines ignored."""
    try:
        ids = [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read the list of ids ({type(e).__name__}: {e})") from None
    if not ids:
        raise DataError(f"{path}: the list of ids is empty")
    return ids


def pair_files(pred_dir: Path, gt_dir: Path, ids: Sequence[str] | None = None,
               partial: bool = False) -> tuple[list[tuple[str, Path, Path]], dict]:
    """(id, prediction, ground truth) of the set scored, and its coverage
    {ground_truth, missing, partial}. The set is ``ids`` or every ground-truth id of ``gt_dir``;
    a prediction without ground truth is an error, a missing prediction too unless ``partial``."""
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    if not pred_dir.is_dir():
        raise DataError(f"{pred_dir}: no such folder of predictions")
    if not gt_dir.is_dir():
        raise DataError(f"{gt_dir}: no such ground-truth folder")
    preds = _by_id(pred_dir, PREDICTION_SUFFIXES, "prediction")
    if not preds:
        raise DataError(f"{pred_dir}: no <id>.png, <id>.npy or <id>.mat prediction in it")
    gts = _by_id(gt_dir, GROUND_TRUTH_SUFFIXES, "ground-truth")
    wanted = list(ids) if ids is not None else sorted(gts)
    no_gt = sorted(set(wanted) - set(gts)) if ids is not None else []
    if no_gt:
        raise DataError(f"{len(no_gt)} of the {len(wanted)} listed ids have no ground truth in {gt_dir}: {_shown(no_gt)}")
    extra = sorted(set(preds) - set(gts))
    if extra:
        raise DataError(f"{len(extra)} of {len(preds)} predictions have no ground truth "
                        f"({gt_dir}/<id>.mat or .png): {_shown(extra)}")
    missing = [i for i in wanted if i not in preds]
    if missing and not partial:
        raise DataError(f"{len(missing)} of the {len(wanted)} ground-truth images have no prediction in {pred_dir} "
                        f"({_shown(missing)}); score the whole set, name the set with --ids FILE, or pass --partial "
                        "to score the predicted ones as a subset")
    scored = [i for i in wanted if i in preds]
    if not scored:
        raise DataError(f"{pred_dir}: none of its predictions is in the set scored")
    coverage = {"ground_truth": len(wanted), "missing": len(missing), "partial": bool(missing)}
    return [(i, preds[i], gts[i]) for i in scored], coverage


def evaluate_pair(args) -> np.ndarray:
    """Counts [T, 4] of one (id, prediction, ground truth) pair."""
    ident, pred_path, gt_path, protocol, thresholds, max_dist = args
    gts = read_ground_truth(gt_path, protocol)
    pred = read_prediction(pred_path, gts[0].shape)
    for g in gts:
        if g.shape != pred.shape:
            raise DataError(f"{ident}: prediction {pred.shape[0]}x{pred.shape[1]} ({pred_path.name}) but ground truth "
                            f"{g.shape[0]}x{g.shape[1]} ({gt_path.name}); predictions must be at the image's size")
    return get_protocol(protocol).image_counts(pred, gts, thresholds, max_dist=max_dist)


def evaluate_folder(pred_dir, gt_dir, protocol: str = "seism", max_dist: float = 0.0075, thresholds=None,
                    workers: int = 0, ids: Sequence[str] | None = None, partial: bool = False) -> dict:
    """odsF / oisF / AP (percent), odsP / odsR, odsT, the number of images and the coverage;
    ``per_image`` (id -> counts [T, 4]) and ``threshold_values`` for curves and per-image rows."""
    from tsn.metrics import build_metric

    if not max_dist > 0:
        raise DataError(f"--max-dist must be > 0, got {max_dist}")
    metric = build_metric("edge", protocol=protocol, thresholds=thresholds, edge_max_dist=max_dist)
    pairs, coverage = pair_files(Path(pred_dir), Path(gt_dir), ids, partial)
    jobs = [(i, p, g, protocol, metric.thresholds, max_dist) for i, p, g in pairs]
    if workers > 0 and len(jobs) > 1:
        with ProcessPoolExecutor(min(workers, len(jobs))) as pool:
            counts = list(pool.map(evaluate_pair, jobs, chunksize=max(1, len(jobs) // (8 * workers))))
    else:
        counts = [evaluate_pair(j) for j in jobs]
    metric.add_image_counts(counts)
    res = metric.compute()
    return {**res, "images": len(counts), **coverage, "protocol": protocol, "max_dist": max_dist,
            "thresholds": len(metric.thresholds), "threshold_values": metric.thresholds,
            "counts": metric.state()["counts"].numpy(), "per_image": dict(zip([p[0] for p in pairs], counts))}


def image_rows(result: dict) -> list[tuple[str, float, float, float, float]]:
    """Each image's (id, T, R, P, F) at its own best threshold, F as the protocol's ODS rule takes
    it (BSDS's ``eval_bdry_img.txt``: interpolated between thresholds)."""
    protocol = get_protocol(result["protocol"])
    rows = []
    for ident, c in result["per_image"].items():
        s = protocol.summarize(result["threshold_values"], c, protocol.ois(c))
        rows.append((ident, s["odsT"], s["odsR"], s["odsP"], s["odsF"]))
    return rows
