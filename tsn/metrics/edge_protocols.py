"""Edge evaluation protocols: SEISM (the TSN paper's odsF), the BSDS500 bench, and a fast preset.

Facts: /work/shared/reference/EDGE_PROTOCOLS.md (SEISM's ``read_one_cont_png``,
``edgesEvalImg``, ``gather_measure``, ``general_ods/ois/ap``; BSDS's
``evaluation_bdry_image``, ``collect_eval_bdry``). docs/METRICS.md walks
through every step and every difference from MATLAB.

* ``seism``: 8-bit truncation of the soft map, ``edgesNms`` (orientation from
  ``convTri(E, 4)``, r = 1, s = 5, m = 1.01, MATLAB's ``sign(0) = 0``, in
  single precision as the mex), strict ``E > t`` at the 101 HED thresholds,
  thinning, ground truth ``thin(seg2bmap(labels))``; ODS = the plain maximum
  of F over thresholds, OIS = each image at its first best threshold, AP as
  ``general_ap``.
* ``bsds``: ``pb >= t`` at ``linspace(1/(n+1), 1 - 1/(n+1), n)``, thinning, no
  NMS, ground-truth boundaries as given, several annotators combined as
  ``evaluation_bdry_image``; ODS interpolated between thresholds, OIS and AP
  as ``collect_eval_bdry``.
* ``fast``: the project's training-time evaluation (``>=``, thinning, no NMS,
  floats as they are, today's summary); the same matcher.

Per image everything reduces to counts [T, 4] = (cntR, sumR, cntP, sumP) per
threshold (:func:`image_counts`); the summaries take their split-wide sums and
the per-image OIS choice (:func:`ois_counts`), so a split can be evaluated in
any order, in pieces, or in several processes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage

from tsn.errors import ConfigError
from tsn.metrics import boundary as B

#: SEISM's parameters/HED.txt: 0.001, 0.01, 0.02, ..., 0.99, 0.999 (as MATLAB's str2double reads them)
HED_THRESHOLDS = np.array([0.001] + [float(f"0.{k:02d}") for k in range(1, 100)] + [0.999])


@dataclass(frozen=True)
class EdgeProtocol:
    name: str
    strict: bool  # E > t (SEISM) or E >= t (BSDS)
    nms: bool  # SEISM's edgesNms on the 8-bit map
    quantize: bool  # truncate to 8 bits (floor(255 p)) before anything else
    single: bool  # compute on float32 k/255 as MATLAB's im2single (SEISM) or float64 (BSDS)
    summary: str  # "seism" | "bsds" | "fast"
    default_thresholds: str | int  # "hed" or n


PROTOCOLS: dict[str, EdgeProtocol] = {
    "fast": EdgeProtocol("fast", strict=False, nms=False, quantize=False, single=False, summary="fast",
                         default_thresholds=99),
    "bsds": EdgeProtocol("bsds", strict=False, nms=False, quantize=False, single=False, summary="bsds",
                         default_thresholds=99),
    "seism": EdgeProtocol("seism", strict=True, nms=True, quantize=True, single=True, summary="seism",
                          default_thresholds="hed"),
}


def get_protocol(name: str) -> EdgeProtocol:
    if name not in PROTOCOLS:
        raise ConfigError(f"edge protocol {name!r} is not valid; valid: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def matlab_linspace(a: float, b: float, n: int) -> np.ndarray:
    """MATLAB's ``linspace``: a + (k * (b - a)) / (n - 1), endpoints exact (rounds as MATLAB, not numpy)."""
    if n == 1:
        return np.array([b], np.float64)
    k = np.arange(n, dtype=np.float64)
    y = a + (k * (b - a)) / (n - 1)
    y[0], y[-1] = a, b
    return y


def resolve_thresholds(thresholds, protocol: EdgeProtocol) -> np.ndarray:
    """None -> the protocol's; "hed" -> SEISM's 101; an int n -> BSDS's n; else an increasing list in (0, 1]."""
    if thresholds is None:
        thresholds = protocol.default_thresholds
    if isinstance(thresholds, str):
        if thresholds == "hed":
            return HED_THRESHOLDS.copy()
        try:
            thresholds = int(thresholds)
        except ValueError:
            raise ConfigError(f"edge thresholds: {thresholds!r} is neither 'hed' nor a number of thresholds") from None
    if isinstance(thresholds, (int, np.integer)) and not isinstance(thresholds, bool):
        if thresholds < 1:
            raise ConfigError(f"edge thresholds must be >= 1, got {thresholds}")
        n = int(thresholds)
        if protocol.summary == "fast":
            return B.default_thresholds(n)  # numpy's linspace, as always for the fast preset
        return matlab_linspace(1.0 / (n + 1), 1.0 - 1.0 / (n + 1), n)
    th = np.asarray(list(thresholds), np.float64)
    if th.size == 0 or np.any(np.diff(th) <= 0) or th[0] <= 0 or th[-1] > 1:
        raise ConfigError("edge thresholds must be increasing and within (0, 1]")
    return th


# ----------------------------------------------------------------------------------
# ground truth


def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """BSDS / SEISM ``seg2bmap`` at the same size: a pixel is boundary if its label
    differs from its east, south or south-east neighbour (zero outside the image);
    last row: east only; last column: south only; the corner pixel never."""
    seg = np.asarray(seg)
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg != e) | (seg != s) | (seg != se)
    b[-1, :] = seg[-1, :] != e[-1, :]
    b[:, -1] = seg[:, -1] != s[:, -1]
    b[-1, -1] = False
    return b


def seism_ground_truth(label_map: np.ndarray) -> np.ndarray:
    """SEISM's ground truth of a segmentation: ``bwmorph(seg2bmap(seg), 'thin', Inf)``.

    (``relabel`` before it renumbers the labels consecutively, which changes no
    boundary.)"""
    return B.thin(seg2bmap(label_map))


# ----------------------------------------------------------------------------------
# the soft map


def to_uint8(prob: np.ndarray) -> np.ndarray:
    """The release's PNG value: ``(255 * p).astype(uint8)``, a truncation (p clipped to [0, 1])."""
    return np.floor(np.clip(np.asarray(prob, np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def soft_map(prob: np.ndarray, protocol: EdgeProtocol) -> np.ndarray:
    """The map the protocol thresholds: uint8 -> k/255 (float32 for SEISM's im2single,
    float64 for BSDS's double/255); floats are truncated to 8 bits first where the
    protocol stores PNGs (SEISM), else used as they are; then SEISM's NMS."""
    a = np.asarray(prob)
    if a.dtype != np.uint8 and protocol.quantize:
        a = to_uint8(a)
    if a.dtype == np.uint8:
        E = a.astype(np.float32) / np.float32(255) if protocol.single else a.astype(np.float64) / 255.0
    else:
        E = a.astype(np.float32 if protocol.single else np.float64)
    if protocol.nms:
        E = seism_nms(E)
    return E


def _conv_tri4(img: np.ndarray) -> np.ndarray:
    """convTri(I, 4): [1 2 3 4 5 4 3 2 1] / 25 both ways, symmetric padding, in I's precision."""
    k = np.array([1, 2, 3, 4, 5, 4, 3, 2, 1], np.float64) / 25.0
    out = ndimage.convolve1d(img, k, axis=0, mode="reflect", output=img.dtype)
    return ndimage.convolve1d(out, k, axis=1, mode="reflect", output=img.dtype)


def seism_orientation(E: np.ndarray) -> np.ndarray:
    """``O = mod(atan(Oyy .* sign(-Oxy) ./ (Oxx + 1e-5)), pi)`` from ``gradient2(convTri(E, 4))``.

    ``np.sign(0) = 0`` as MATLAB's: where Oxy = 0 exactly (an axis-aligned
    ridge) the orientation is 0, i.e. the map is compared with its left and
    right neighbours whatever the ridge's direction."""
    S = _conv_tri4(E)
    Oy, Ox = np.gradient(S)  # gradient2: centred inside, one-sided on the border (axis 0 = y)
    Oxx = np.gradient(Ox, axis=1)
    Oyy, Oxy = np.gradient(Oy)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = Oyy * np.sign(-Oxy) / (Oxx + E.dtype.type(1e-5))
        return np.mod(np.arctan(t), E.dtype.type(np.pi))


@B._compiled
def _nms_kernel(E0, O, r, s, m):
    """The loops of edgesNmsMex.cpp in single precision (E0, O float32 [h, w])."""
    h, w = E0.shape
    E = E0.copy()
    mf = np.float32(m)
    one = np.float32(1.0)
    xmax, ymax = w - 1.001, h - 1.001
    for y in range(h):  # row-major here; each pixel is independent (E0 is only read)
        for x in range(w):
            e = E0[y, x]
            if e == 0:
                continue
            e = e * mf
            coso = np.float32(np.cos(O[y, x]))
            sino = np.float32(np.sin(O[y, x]))
            for d in range(-r, r + 1):
                if d == 0:
                    continue
                xs = np.float32(x) + np.float32(d) * coso
                ys = np.float32(y) + np.float32(d) * sino
                xs = np.float32(0.0) if xs < 0 else (np.float32(xmax) if xs > xmax else xs)
                ys = np.float32(0.0) if ys < 0 else (np.float32(ymax) if ys > ymax else ys)
                x0 = int(xs)
                y0 = int(ys)
                dx0 = xs - np.float32(x0)
                dy0 = ys - np.float32(y0)
                dx1 = one - dx0
                dy1 = one - dy0
                e0 = (E0[y0, x0] * dx1 * dy1 + E0[y0, x0 + 1] * dx0 * dy1
                      + E0[y0 + 1, x0] * dx1 * dy0 + E0[y0 + 1, x0 + 1] * dx0 * dy0)
                if e < e0:
                    E[y, x] = 0
                    break
    if s > w // 2:
        s = w // 2
    if s > h // 2:
        s = h // 2
    for x in range(s):
        f = np.float32(x) / np.float32(s)
        for y in range(h):
            E[y, x] *= f
            E[y, w - 1 - x] *= f
    for x in range(w):
        for y in range(s):
            f = np.float32(y) / np.float32(s)
            E[y, x] *= f
            E[h - 1 - y, x] *= f
    return E


def seism_nms(E: np.ndarray, r: int = 1, s: int = 5, m: float = 1.01) -> np.ndarray:
    """``edgesNmsMex(E, O, r, s, m)`` with SEISM's orientation, in single precision.

    A non-zero pixel is zeroed when ``m * E`` is below the bilinear
    interpolation of E at ``d`` pixels along the orientation, d = -r..r (the
    sample point clamped to [0, w - 1.001] x [0, h - 1.001]); then the borders
    are ramped down over s pixels (columns first, then rows, as the mex)."""
    E = np.ascontiguousarray(E, np.float32)
    O = np.ascontiguousarray(seism_orientation(E), np.float32)
    return _nms_kernel(E, O, int(r), int(s), float(m))


# ----------------------------------------------------------------------------------
# per image


def image_counts(
    prob: np.ndarray,
    gts: Sequence[np.ndarray] | np.ndarray,
    protocol: EdgeProtocol | str,
    thresholds: np.ndarray,
    max_dist: float | None = None,
    radius: float | None = None,
    void: np.ndarray | None = None,
) -> np.ndarray:
    """Counts [T, 4] = (cntR, sumR, cntP, sumP) of one image under ``protocol``.

    ``prob``: uint8 (a stored PNG) or floats in [0, 1]. ``gts``: one boolean
    boundary map or a list of them (annotators), already in the protocol's form
    (e.g. :func:`seism_ground_truth`). The tolerance is ``radius`` pixels, or
    ``max_dist`` x the diagonal of this image. ``void`` pixels are removed from
    prediction and ground truth (after NMS).
    """
    if isinstance(protocol, str):
        protocol = get_protocol(protocol)
    E = soft_map(prob, protocol)
    gts = [np.asarray(gts, bool)] if isinstance(gts, np.ndarray) and gts.ndim == 2 else [np.asarray(g, bool) for g in gts]
    for g in gts:
        if g.shape != E.shape:
            raise ValueError(f"edge map {E.shape} and ground truth {g.shape} differ in size")
    if void is not None:
        E = np.where(void, E.dtype.type(0), E)
        gts = [g & ~void for g in gts]
    if radius is None:
        if max_dist is None:
            raise ValueError("give max_dist or radius")
        radius = B.tolerance_px(max_dist, E.shape)
    return B.threshold_counts(E, gts, np.asarray(thresholds, np.float64), radius, protocol.strict)


# ----------------------------------------------------------------------------------
# summaries


def _f(r, p):
    r, p = np.asarray(r, np.float64), np.asarray(p, np.float64)
    s = p + r
    return np.where(s == 0, 0.0, 2 * p * r / np.where(s == 0, 1.0, s))


def _seism_pr(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SEISM's R, P of summed counts (``gather_measure``): no ground truth -> R 1, P 0;
    no prediction -> R 0, P 1; no match -> 0, 0; else the ratios."""
    cntR, sumR, cntP, sumP = (counts[..., k].astype(np.float64) for k in range(4))
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


def _seism_image_f(counts: np.ndarray) -> np.ndarray:
    """One image's F per threshold as ``eval_cont``: 0 without ground truth or without prediction."""
    cntR, sumR, cntP, sumP = (counts[:, k].astype(np.float64) for k in range(4))
    ok = (sumR != 0) & (sumP != 0)
    R = np.where(ok, cntR / np.where(ok, sumR, 1), 0.0)
    P = np.where(ok, cntP / np.where(ok, sumP, 1), 0.0)
    return _f(R, P)


def ois_counts(counts: np.ndarray, protocol: EdgeProtocol | str) -> np.ndarray:
    """One image's counts at its best threshold: the FIRST of equal maxima for SEISM
    (``max(values, [], 2)``) and BSDS (``ff(1)``), the last for the fast preset (as before)."""
    if isinstance(protocol, str):
        protocol = get_protocol(protocol)
    if protocol.summary == "fast":
        return B.ois_counts(counts)
    if protocol.summary == "seism":
        f = _seism_image_f(counts)
    else:
        r, p = B._ratios(counts)
        f = B._fmeasure(r, p)
    return counts[int(np.argmax(f))]


def seism_ap(R: np.ndarray, P: np.ndarray) -> float:
    """``general_ap``: ``[~, k] = unique(R)`` (first occurrences, sorted), interp1 of P on
    recall 0:0.01:1, NaN (outside the recall range) dropped, sum / 100; 0 for < 2 recalls."""
    _, k = np.unique(R, return_index=True)
    Ru, Pu = R[k], P[k]
    if Ru.size < 2:
        return 0.0
    Ri = np.round(np.arange(101) * 0.01, 12)  # 0:.01:1 (MATLAB's colon gives these to the ulp)
    Pi = np.interp(Ri, Ru, Pu)
    Pi = Pi[(Ri >= Ru[0]) & (Ri <= Ru[-1])]
    return float(Pi.sum() / 100.0)


def bsds_ap(R: np.ndarray, P: np.ndarray) -> float:
    """``collect_eval_bdry``'s Area_PR: ``[Ru, indR] = unique(R)`` (first occurrences with
    today's MATLAB), P interpolated on 0:0.01:1, NaN -> 0, sum x 0.01; 0 for < 2 recalls."""
    _, k = np.unique(R, return_index=True)
    Ru, Pu = R[k], P[k]
    if Ru.size < 2:
        return 0.0
    Ri = np.round(np.arange(101) * 0.01, 12)
    Pi = np.interp(Ri, Ru, Pu)
    Pi[(Ri < Ru[0]) | (Ri > Ru[-1])] = 0.0
    return float(Pi.sum() * 0.01)


def summarize(protocol: EdgeProtocol | str, thresholds: np.ndarray, counts: np.ndarray,
              ois: np.ndarray) -> dict[str, float]:
    """odsF, odsP, odsR, odsT, oisF, AP (fractions) from split-wide counts [T, 4] and OIS counts [4]."""
    if isinstance(protocol, str):
        protocol = get_protocol(protocol)
    thresholds = np.asarray(thresholds, np.float64)
    if protocol.summary == "fast":
        return B.summarize(thresholds, counts, ois)
    if protocol.summary == "seism":
        R, P = _seism_pr(counts)
        F = _f(R, P)
        i = int(np.argmax(F))  # general_ods: max(), the first of equal maxima, no interpolation
        oR, oP = _seism_pr(np.asarray(ois)[None])
        return {"odsF": float(F[i]), "odsP": float(P[i]), "odsR": float(R[i]), "odsT": float(thresholds[i]),
                "oisF": float(_f(oR, oP)[0]), "AP": seism_ap(R, P)}
    R, P = B._ratios(counts)
    odsT, odsR, odsP, odsF = B._max_f_interp(thresholds, R, P)
    oR, oP = B._ratios(np.asarray(ois))
    return {"odsF": float(odsF), "odsP": float(odsP), "odsR": float(odsR), "odsT": float(odsT),
            "oisF": float(B._fmeasure(oR, oP)), "AP": bsds_ap(R, P)}


def diagonal_radius(max_dist: float, shape: tuple[int, int]) -> float:
    """Tolerance in pixels: max_dist x the diagonal of ``shape`` (the ORIGINAL image's)."""
    return max_dist * math.hypot(shape[0], shape[1])
