"""Edge evaluation protocols: one :class:`EdgeProtocol` object each, over the maths of
:mod:`tsn.metrics.boundary`.

A protocol is a strategy: how a soft map is prepared (8-bit truncation, precision, NMS), how an
annotator's ground truth is built (from the segmentation or the boundaries, thinned or not), the
thresholds and the comparison with them, and how OIS and the summary are taken. The
instances, registered in :data:`PROTOCOLS`:

* ``seism`` (the TSN paper's odsF, SEISM's ``read_one_cont_png``, ``edgesEvalImg``,
  ``gather_measure``, ``general_ods/ois/ap``): 8-bit truncation of the soft map, ``edgesNms``
  in single precision with MATLAB's ``sign(0) = 0``, strict ``E > t`` at the 101 HED
  thresholds, ground truth ``thin(seg2bmap(labels))``; ODS the plain maximum of F, OIS each
  image at its first best threshold, AP as ``general_ap``.
* ``bsds`` (the BSDS500 bench, ``evaluation_bdry_image``, ``collect_eval_bdry``):
  ``pb >= t`` at ``linspace(1/(n+1), 1 - 1/(n+1), n)``, no NMS, each annotator's
  ``Boundaries`` as given; ODS interpolated between thresholds, OIS and AP as
  ``collect_eval_bdry``.
* ``bsds_nms``: how HED, RCF and their successors score CNN maps: the map stored as an 8-bit
  PNG, the NMS of RCF's ``edge_nms.m`` (:func:`field_nms`), stored again, then ``bsds``.
* ``fast`` (the training-time validation): floats as they are, ``>=``, the label map as ground
  truth, BSDS's summary but OIS at the last of equal maxima and AP with the last duplicate
  recall (R x P for a single recall); its options ``nms``, ``thin``, ``thin_gt`` and
  ``quantize`` make variants (:meth:`EdgeProtocol.with_options`).

Adding a protocol is one instance here. Facts: /work/shared/reference/EDGE_PROTOCOLS.md;
docs/METRICS.md walks through every step and every difference from MATLAB.

Per image everything reduces to counts [T, 4] = (cntR, sumR, cntP, sumP) per threshold
(:meth:`EdgeProtocol.image_counts`); the summary takes their split-wide sums and the per-image
OIS choice (:meth:`EdgeProtocol.ois`), so a split can be evaluated in any order, in pieces,
or in several processes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from tsn.errors import ConfigError
from tsn.metrics import boundary as B
from tsn.registry import Registry

#: SEISM's parameters/HED.txt: 0.001, 0.01, 0.02, ..., 0.99, 0.999 (as MATLAB's str2double reads them)
HED_THRESHOLDS = np.array([0.001] + [float(f"0.{k:02d}") for k in range(1, 100)] + [0.999])


def to_uint8(prob: np.ndarray) -> np.ndarray:
    """The release's PNG value: ``(255 * p).astype(uint8)``, a truncation (p clipped to [0, 1])."""
    return np.floor(np.clip(np.asarray(prob, np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def round_to_8bit(prob: np.ndarray) -> np.ndarray:
    """``round(255 p) / 255`` in the map's float type (the fast preset's ``quantize``)."""
    return np.round(prob * 255.0) / 255.0


def im2uint8(prob: np.ndarray) -> np.ndarray:
    """MATLAB's ``im2uint8`` / ``imwrite`` of a map in [0, 1] (and torchvision's ``save_image``):
    ``round(255 p)``, how HED / RCF store their maps before and after NMS."""
    return np.round(np.clip(np.asarray(prob, np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def field_nms(E: np.ndarray) -> np.ndarray:
    """The NMS HED and RCF run before the Berkeley bench (RCF's ``edge_nms.m``): SEISM's
    orientation, ``edgesNms(E, O, 2, 5, 1.01)`` ("2 for BSDS500", r = 2 where SEISM uses 1),
    then the map stored as an 8-bit PNG again, which the bench reads as k / 255 in double."""
    return im2uint8(B.nms(E, r=2, s=5, m=1.01)).astype(np.float64) / 255.0


def numpy_grid(n: int) -> np.ndarray:
    """numpy's ``linspace(1/(n+1), 1 - 1/(n+1), n)`` (the fast preset's thresholds, as always)."""
    return np.linspace(1.0 / (n + 1), 1.0 - 1.0 / (n + 1), n)


def matlab_grid(n: int) -> np.ndarray:
    """The BSDS bench's ``linspace(1/(n+1), 1 - 1/(n+1), n)`` as MATLAB rounds it."""
    return B.matlab_linspace(1.0 / (n + 1), 1.0 - 1.0 / (n + 1), n)


def seism_recall_precision(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SEISM's R, P of summed counts (``gather_measure``): no ground truth -> R 1, P 0;
    no prediction -> R 0, P 1; no match -> 0, 0; else the ratios."""
    cntR, sumR, cntP, sumP = (np.asarray(counts)[..., k].astype(np.float64) for k in range(4))
    R = np.zeros_like(cntR)
    P = np.zeros_like(cntR)
    a = (sumR == 0) & (cntP == 0)
    R[a], P[a] = 1.0, 0.0
    b = (sumP == 0) & (cntR == 0)
    R[b], P[b] = 0.0, 1.0
    c = (sumP != 0) & (cntR != 0)
    R[c] = cntR[c] / sumR[c]
    P[c] = cntP[c] / sumP[c]
    return R, P


def seism_image_f(counts: np.ndarray) -> np.ndarray:
    """One image's F per threshold as ``eval_cont``: 0 without ground truth or without prediction."""
    cntR, sumR, cntP, sumP = (np.asarray(counts)[:, k].astype(np.float64) for k in range(4))
    ok = (sumR != 0) & (sumP != 0)
    R = np.where(ok, cntR / np.where(ok, sumR, 1), 0.0)
    P = np.where(ok, cntP / np.where(ok, sumP, 1), 0.0)
    return B.fmeasure(R, P)


def bsds_image_f(counts: np.ndarray) -> np.ndarray:
    """One image's F per threshold from BSDS's zero-safe ratios."""
    return B.fmeasure(*B.recall_precision(counts))


@dataclass(frozen=True)
class EdgeProtocol:
    """How one protocol turns soft maps and annotations into ODS / OIS / AP.

    Every field is a choice the protocol's MATLAB code makes; the methods combine them with the
    shared maths of :mod:`tsn.metrics.boundary` and never look at the protocol's name.
    """

    name: str
    default_thresholds: str | int  # "hed" or n evenly spaced ones
    grid: Callable[[int], np.ndarray]  # the n evenly spaced thresholds
    strict: bool  # E > t (SEISM) or E >= t (BSDS)
    precision: type  # the soft map's float type: float32 (im2single) or float64
    quantize: Callable[[np.ndarray], np.ndarray] | None = None  # applied to float maps first
    nms: Callable[[np.ndarray], np.ndarray] | None = None
    thin: bool = True  # thin every binarised map
    gt_from_segmentation: bool = False  # an annotator's boundaries are seg2bmap(Segmentation), not Boundaries
    thin_gt: bool = False  # thin the ground-truth boundaries
    recall_precision: Callable = B.recall_precision  # of summed counts
    image_f: Callable = bsds_image_f  # one image's F per threshold, for OIS
    ois_last: bool = False  # OIS: the last (True) or first of equal per-image maxima
    ods_interpolated: bool = True  # BSDS's maxF between thresholds, or the plain maximum
    ap: Callable[[np.ndarray, np.ndarray], float] = B.average_precision
    options: tuple[str, ...] = ()  # the keyword options with_options accepts

    # ------------------------------------------------------------------ variants

    def with_options(self, **options) -> EdgeProtocol:
        """The variant with ``nms`` / ``thin`` / ``thin_gt`` / ``quantize`` (booleans) set.

        Only options the protocol lists in ``options`` change it; the others are fixed by the
        protocol's MATLAB code and ignored (the edge metric passes them all)."""
        change = {}
        for key, on in options.items():
            if key not in self.options or on is None:
                continue
            on = bool(on)
            if key == "nms":
                change["nms"] = partial(B.nms, matlab_sign=False) if on else None
            elif key == "quantize":
                change["quantize"] = round_to_8bit if on else None
            else:
                change[key] = on
        return dataclasses.replace(self, **change) if change else self

    # ------------------------------------------------------------------ thresholds

    def thresholds(self, spec=None) -> np.ndarray:
        """None -> the protocol's; "hed" -> SEISM's 101; an int n (or its string) -> n evenly
        spaced ones (:attr:`grid`); else an increasing sequence within (0, 1]."""
        if spec is None:
            spec = self.default_thresholds
        if isinstance(spec, str):
            if spec == "hed":
                return HED_THRESHOLDS.copy()
            try:
                spec = int(spec)
            except ValueError:
                raise ConfigError(f"edge thresholds: {spec!r} is neither 'hed' nor a number of thresholds") from None
        if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
            if spec < 1:
                raise ConfigError(f"edge thresholds must be >= 1, got {spec}")
            return self.grid(int(spec))
        th = np.asarray(list(spec), np.float64)
        if th.size == 0 or np.any(np.diff(th) <= 0) or th[0] <= 0 or th[-1] > 1:
            raise ConfigError("edge thresholds must be increasing and within (0, 1]")
        return th

    # ------------------------------------------------------------------ inputs

    def annotator(self, segmentation: np.ndarray | None, boundaries: np.ndarray | None,
                  where: str = "the annotator") -> np.ndarray:
        """One BSDS annotator's boundary map (``Segmentation`` and / or ``Boundaries`` of its
        struct), from the piece this protocol builds it from: ``seg2bmap(Segmentation)`` for
        SEISM, ``Boundaries`` as given for the bench. (A label map or a binary boundary image is
        protocol-independent: :func:`~tsn.metrics.boundary.seg2bmap` or ``!= 0``; any thinning
        happens in :meth:`image_counts`.) ``ValueError`` naming ``where`` when the piece is missing."""
        if self.gt_from_segmentation:
            if segmentation is None:
                raise ValueError(f"{where} has no Segmentation (the {self.name} protocol builds boundaries from it)")
            return B.seg2bmap(segmentation)
        if boundaries is None:
            raise ValueError(f"{where} has no Boundaries")
        return np.asarray(boundaries) != 0

    def soft_map(self, prob: np.ndarray) -> np.ndarray:
        """The map the protocol thresholds: uint8 -> k/255 in :attr:`precision`; floats
        quantized first where the protocol stores 8-bit maps; then its NMS."""
        a = np.asarray(prob)
        if a.dtype != np.uint8 and self.quantize is not None:
            a = self.quantize(a)
        dt = self.precision
        E = a.astype(dt) / dt(255) if a.dtype == np.uint8 else a.astype(dt)
        if self.nms is not None:
            E = self.nms(E)
        return E

    # ------------------------------------------------------------------ per image

    def image_counts(self, prob: np.ndarray, gts: Sequence[np.ndarray] | np.ndarray, thresholds: np.ndarray,
                     max_dist: float | None = None, radius: float | None = None,
                     void: np.ndarray | None = None) -> np.ndarray:
        """Counts [T, 4] = (cntR, sumR, cntP, sumP) of one image.

        ``prob``: uint8 (a stored PNG) or floats in [0, 1]. ``gts``: one boolean boundary map or
        a list of them (annotators, e.g. from :meth:`annotator`). The tolerance is ``radius``
        pixels, or ``max_dist`` x the diagonal of this image. ``void`` pixels are removed from
        prediction and ground truth (after NMS)."""
        E = self.soft_map(prob)
        if isinstance(gts, np.ndarray) and gts.ndim == 2:
            gts = [gts]
        gts = [np.asarray(g, bool) for g in gts]
        for g in gts:
            if g.shape != E.shape:
                raise ValueError(f"edge map {E.shape} and ground truth {g.shape} differ in size")
        if void is not None:
            E = np.where(void, E.dtype.type(0), E)
            gts = [g & ~void for g in gts]
        if self.thin_gt:
            gts = [B.thin(g) for g in gts]
        if radius is None:
            if max_dist is None:
                raise ValueError("give max_dist or radius")
            radius = B.tolerance_px(max_dist, E.shape)
        return B.threshold_counts(E, gts, np.asarray(thresholds, np.float64), radius, self.strict, self.thin)

    def ois(self, counts: np.ndarray) -> np.ndarray:
        """One image's counts [4] at its best threshold (first or last of equal maxima)."""
        f = self.image_f(counts)
        best = np.flatnonzero(f == f.max())[-1] if self.ois_last else int(np.argmax(f))
        return np.asarray(counts)[best]

    # ------------------------------------------------------------------ summary

    def summarize(self, thresholds: np.ndarray, counts: np.ndarray, ois: np.ndarray) -> dict[str, float]:
        """odsF, odsP, odsR, odsT, oisF, AP (fractions) from split-wide counts [T, 4] and OIS counts [4]."""
        thresholds = np.asarray(thresholds, np.float64)
        R, P = self.recall_precision(counts)
        if self.ods_interpolated:
            odsT, odsR, odsP, odsF = B.max_f_interp(thresholds, R, P)
        else:
            i = int(np.argmax(B.fmeasure(R, P)))  # general_ods: the first of equal maxima
            odsT, odsR, odsP, odsF = thresholds[i], R[i], P[i], B.fmeasure(R[i], P[i])
        oR, oP = self.recall_precision(np.asarray(ois)[None])
        return {"odsF": float(odsF), "odsP": float(odsP), "odsR": float(odsR), "odsT": float(odsT),
                "oisF": float(B.fmeasure(oR, oP)[0]), "AP": self.ap(R, P)}


PROTOCOLS: Registry[EdgeProtocol] = Registry("edge protocol")

PROTOCOLS.register("fast")(EdgeProtocol(
    "fast", default_thresholds=99, grid=numpy_grid, strict=False, precision=np.float64,
    ois_last=True, ap=partial(B.average_precision, repeated="last", one_recall="area"),
    options=("nms", "thin", "thin_gt", "quantize")))
PROTOCOLS.register("bsds")(EdgeProtocol(
    "bsds", default_thresholds=99, grid=matlab_grid, strict=False, precision=np.float64))
PROTOCOLS.register("bsds_nms")(EdgeProtocol(
    "bsds_nms", default_thresholds=99, grid=matlab_grid, strict=False, precision=np.float32, quantize=im2uint8,
    nms=field_nms))
PROTOCOLS.register("seism")(EdgeProtocol(
    "seism", default_thresholds="hed", grid=matlab_grid, strict=True, precision=np.float32, quantize=to_uint8,
    nms=B.nms, gt_from_segmentation=True, thin_gt=True, recall_precision=seism_recall_precision,
    image_f=seism_image_f, ods_interpolated=False))


def get_protocol(protocol: str | EdgeProtocol) -> EdgeProtocol:
    """The registered protocol called ``protocol`` (an :class:`EdgeProtocol` passes through)."""
    if isinstance(protocol, EdgeProtocol):
        return protocol
    return PROTOCOLS.get(protocol, "edge protocol")
