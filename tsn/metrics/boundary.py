"""The maths of boundary evaluation, shared by every edge protocol: numpy / scipy, hot loops
compiled with numba (a declared dependency; the same code runs as plain Python without it).

Re-implements the pieces of the BSDS500 benchmark (``evaluation_bdry_image``,
``correspondPixels``, ``collect_eval_bdry``) and of SEISM that the dense multi-task community
runs through MATLAB. What a protocol combines (which threshold comparison, which ground truth,
which summary) is decided in :mod:`tsn.metrics.edge_protocols`; nothing here knows a protocol.

* :func:`thin` - MATLAB ``bwmorph(bw, 'thin', Inf)`` (Lam, Lee & Suen 1992, the same
  two-subiteration look-up tables); :func:`seg2bmap` - BSDS / SEISM boundaries of a segmentation.
* :func:`nms` - ``edgesNmsMex`` of Dollar's toolbox with the orientation
  (:func:`orientation`) SEISM and HED / RCF compute before it.
* :func:`match_count` / :func:`match_pixels` - one-to-one correspondence of predicted to
  ground-truth boundary pixels within a radius (``d^2 <= r^2``, as correspondPixels).
  correspondPixels solves a min-cost assignment where leaving a pixel unmatched costs 100 * r
  and a match costs its distance (<= r); matching therefore always wins and the assignment is,
  in effect, a maximum-cardinality matching of minimum total distance. The counts (the only
  thing precision / recall use) are its cardinality, which :func:`match_count` gets exactly with
  our own Hopcroft-Karp (:func:`maximum_matching`, dead ends marked, so polynomial on every
  graph; scipy's ``maximum_bipartite_matching`` is exponential on layered graphs, gh-26147).
  :func:`match_pixels` returns the pairs of a minimum-cost maximum matching
  (``linear_sum_assignment`` per connected component of the candidate graph); tests check both
  give the same counts.
* :func:`threshold_counts` - per threshold: binarise, thin, match against one or several
  annotators: counts [T, 4] = (cntR, sumR, cntP, sumP).
* Summaries of counts: :func:`recall_precision`, :func:`fmeasure`, :func:`max_f_interp`
  (BSDS's interpolated maximum), :func:`average_precision`; :func:`matlab_linspace`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy import ndimage, sparse
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components

try:  # pragma: no cover - exercised by whichever environment runs the tests
    from numba import njit as _njit

    def _compiled(f):
        return _njit(cache=True, nogil=True)(f)

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    HAVE_NUMBA = False

    def _compiled(f):
        return f


# ----------------------------------------------------------------------------------
# thinning (bwmorph 'thin', Inf) and boundaries of a segmentation

# neighbour k (bit k-1): x1=E, x2=NE, x3=N, x4=NW, x5=W, x6=SW, x7=S, x8=SE
_NB = ((0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1))


def _offsets(W: int) -> np.ndarray:
    """Flat offsets of the 8 neighbours in an image of row length ``W``."""
    return np.array([dy * W + dx for dy, dx in _NB], np.int64)


def _thin_luts() -> tuple[np.ndarray, np.ndarray]:
    """Deletion tables of Lam, Lee & Suen's algorithm A1 (what bwmorph uses)."""
    lut1 = np.zeros(256, bool)
    lut2 = np.zeros(256, bool)
    for n in range(256):
        x = [bool(n >> i & 1) for i in range(8)]  # x[0] = x1 ... x[7] = x8
        # G1: crossing number X_H == 1
        xh = sum(1 for i in (0, 2, 4, 6) if not x[i] and (x[i + 1] or x[(i + 2) % 8]))
        # G2: 2 <= min(n1, n2) <= 3
        n1 = sum(1 for k in (1, 3, 5, 7) if x[k] or x[k - 1])
        n2 = sum(1 for k in (1, 3, 5, 7) if x[k] or x[(k + 1) % 8])
        g12 = xh == 1 and 2 <= min(n1, n2) <= 3
        g3 = not ((x[1] or x[2] or not x[7]) and x[0])
        g3p = not ((x[5] or x[6] or not x[3]) and x[4])
        lut1[n] = g12 and g3
        lut2[n] = g12 and g3p
    return lut1, lut2


_LUT1, _LUT2 = _thin_luts()


@_compiled
def _live_neighbours(img, offs, pix, count, seen, stamp, out, m):
    """Append to ``out[m:]`` the foreground 8-neighbours of ``pix[:count]`` not
    yet stamped with ``stamp`` (stamping them); returns the new length."""
    for j in range(count):
        for k in range(8):
            q = pix[j] + offs[k]
            if img[q] != 0 and seen[q] != stamp:
                seen[q] = stamp
                out[m] = q
                m += 1
    return m


@_compiled
def _thin_kernel(img, offs, lut1, lut2, cand):
    """bwmorph thin on a zero-bordered flat uint8 image, in place; ``cand`` = all
    its foreground pixels; returns the surviving ones. The algorithm of
    :func:`thin` (each subiteration decides on the current image and deletes
    simultaneously; only pixels next to a deletion are examined again)."""
    n = cand.shape[0]
    seen = np.zeros(img.shape[0], np.int64)  # stamp per pixel, to de-duplicate the active list
    stamp = 1
    act = np.empty(n, np.int64)
    na = 0
    for j in range(n):  # G1 needs a background 4-neighbour (E, N, W, S = offs 0, 2, 4, 6)
        p = cand[j]
        if img[p + offs[0]] == 0 or img[p + offs[2]] == 0 or img[p + offs[4]] == 0 or img[p + offs[6]] == 0:
            act[na] = p
            na += 1
    kill = np.empty(n, np.int64)
    gone = np.empty(n, np.int64)
    nxt = np.empty(9 * n + 1, np.int64)
    while na > 0:
        ng = 0
        for sub in range(2):
            lut = lut1 if sub == 0 else lut2
            nk = 0
            for j in range(na):
                p = act[j]
                if img[p] == 0:
                    continue
                code = 0
                for k in range(8):
                    if img[p + offs[k]] != 0:
                        code |= 1 << k
                if lut[code]:
                    kill[nk] = p
                    nk += 1
            for j in range(nk):
                img[kill[j]] = 0
                gone[ng] = kill[j]
                ng += 1
            if sub == 0 and nk > 0:  # the second subiteration also examines what the first exposed
                stamp += 1
                m = 0
                for j in range(na):
                    p = act[j]
                    if img[p] != 0 and seen[p] != stamp:
                        seen[p] = stamp
                        nxt[m] = p
                        m += 1
                m = _live_neighbours(img, offs, kill, nk, seen, stamp, nxt, m)
                act = nxt[:m].copy()
                na = m
        if ng == 0:
            break
        stamp += 1
        m = _live_neighbours(img, offs, gone, ng, seen, stamp, nxt, 0)
        act = nxt[:m].copy()
        na = m
    m = 0
    out = np.empty(n, np.int64)
    for j in range(n):
        if img[cand[j]] != 0:
            out[m] = cand[j]
            m += 1
    return out[:m]


def thin(bmap: np.ndarray) -> np.ndarray:
    """Thin a binary map to 1-pixel-wide curves (``bwmorph(bmap, 'thin', Inf)``).

    Each subiteration deletes, simultaneously, the candidates whose 3x3 code is in its table;
    only pixels next to a deletion are examined again (any other pixel already saw its current
    neighbourhood in both subiterations and kept it), so the cost follows the number of
    deleted pixels rather than image size x iterations. Tested against scikit-image's ``thin``,
    which reproduces MATLAB's.
    """
    b = np.asarray(bmap, bool)
    h, w = b.shape
    W = w + 2
    img = np.zeros((h + 2) * W, np.uint8)
    img.reshape(h + 2, W)[1:-1, 1:-1] = b
    kept = _thin_kernel(img, _offsets(W), _LUT1, _LUT2, np.flatnonzero(img))
    out = np.zeros((h + 2) * W, bool)
    out[kept] = True
    return out.reshape(h + 2, W)[1:-1, 1:-1].copy()


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

# ----------------------------------------------------------------------------------
# non-maximum suppression (edgesNms)


def _conv_tri4(img: np.ndarray) -> np.ndarray:
    """convTri(I, 4): [1 2 3 4 5 4 3 2 1] / 25 both ways, symmetric padding, in I's precision."""
    k = np.array([1, 2, 3, 4, 5, 4, 3, 2, 1], np.float64) / 25.0
    out = ndimage.convolve1d(img, k, axis=0, mode="reflect", output=img.dtype)
    return ndimage.convolve1d(out, k, axis=1, mode="reflect", output=img.dtype)


def orientation(E: np.ndarray, matlab_sign: bool = True) -> np.ndarray:
    """``O = mod(atan(Oyy .* sign(-Oxy) ./ (Oxx + 1e-5)), pi)`` from ``gradient2(convTri(E, 4))``.

    ``matlab_sign``: ``sign(0) = 0`` as MATLAB's (SEISM), so where Oxy = 0 exactly (an
    axis-aligned ridge) the orientation is 0 and the map is compared with its left and right
    neighbours whatever the ridge's direction. ``False`` takes ``sign(0)`` as +1, which thins
    axis-aligned ridges too (the ``fast`` preset's ``nms`` option)."""
    S = _conv_tri4(E)
    Oy, Ox = np.gradient(S)  # gradient2: centred inside, one-sided on the border (axis 0 = y)
    Oxx = np.gradient(Ox, axis=1)
    Oyy, Oxy = np.gradient(Oy)
    sgn = np.sign(-Oxy) if matlab_sign else np.where(Oxy > 0, -1.0, 1.0).astype(E.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = Oyy * sgn / (Oxx + E.dtype.type(1e-5))
        return np.mod(np.arctan(t), E.dtype.type(np.pi))


@_compiled
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


def nms(E: np.ndarray, r: int = 1, s: int = 5, m: float = 1.01, matlab_sign: bool = True) -> np.ndarray:
    """``edgesNmsMex(E, O, r, s, m)`` with the :func:`orientation` of E, in single precision.

    A non-zero pixel is zeroed when ``m * E`` is below the bilinear interpolation of E at
    ``d`` pixels along the orientation, d = -r..r (the sample point clamped to
    [0, w - 1.001] x [0, h - 1.001]); then the borders are ramped down over s pixels (columns
    first, then rows, as the mex). The orientation is taken in E's precision; the result has
    E's dtype (float32 for SEISM's im2single maps)."""
    E = np.asarray(E)
    O = np.ascontiguousarray(orientation(E, matlab_sign), np.float32)
    out = _nms_kernel(np.ascontiguousarray(E, np.float32), O, int(r), int(s), float(m))
    return out.astype(E.dtype, copy=False)


# ----------------------------------------------------------------------------------
# correspondence


def tolerance_px(max_dist: float, shape: tuple[int, int]) -> float:
    """Matching radius in pixels: max_dist x image diagonal (correspondPixels)."""
    return max_dist * math.hypot(shape[0], shape[1])


@lru_cache(maxsize=16)
def _disc(radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer offsets (dy, dx) with dy^2 + dx^2 <= radius^2, and their lengths."""
    R = int(math.ceil(radius))
    dy, dx = np.mgrid[-R : R + 1, -R : R + 1]
    keep = dy * dy + dx * dx <= radius * radius
    dy, dx = dy[keep], dx[keep]
    return dy, dx, np.sqrt(dy * dy + dx * dx)


class _GroundTruth:
    """Ground-truth boundary pixels of one image, indexed for fast neighbour lookup."""

    def __init__(self, gt: np.ndarray, radius: float) -> None:
        self.radius = radius
        self.R = int(math.ceil(radius))
        h, w = gt.shape
        ys, xs = np.nonzero(gt)
        self.n = ys.size
        self.ids = np.full((h + 2 * self.R, w + 2 * self.R), -1, np.int64)
        self.ids[ys + self.R, xs + self.R] = np.arange(self.n)

    def candidates(self, pys: np.ndarray, pxs: np.ndarray):
        """(pred index, gt index, distance) of every pair within the radius, pred-major."""
        dy, dx, dist = _disc(self.radius)
        pi_all, gi_all, d_all = [], [], []
        step = max(1, (1 << 20) // max(1, dy.size))  # bound the [n, disc] temporary to ~8 MiB
        for a in range(0, pys.size, step):
            y, x = pys[a : a + step], pxs[a : a + step]
            nb = self.ids[y[:, None] + self.R + dy[None, :], x[:, None] + self.R + dx[None, :]]
            pi, k = np.nonzero(nb >= 0)
            pi_all.append(pi + a)
            gi_all.append(nb[pi, k])
            d_all.append(dist[k])
        if not pi_all:
            z = np.zeros(0, np.int64)
            return z, z, np.zeros(0)
        return np.concatenate(pi_all), np.concatenate(gi_all), np.concatenate(d_all)

    def graph(self, pys: np.ndarray, pxs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """CSR (indptr, indices) of the candidate graph: row i = predicted pixel i."""
        if HAVE_NUMBA:
            dy, dx, _ = _disc(self.radius)
            return _candidate_graph(self.ids, self.R, dy.astype(np.int64), dx.astype(np.int64),
                                    np.asarray(pys, np.int64), np.asarray(pxs, np.int64))
        pi, gi, _ = self.candidates(pys, pxs)
        indptr = np.zeros(pys.size + 1, np.int64)
        np.cumsum(np.bincount(pi, minlength=pys.size), out=indptr[1:])
        return indptr, gi.astype(np.int64)


# Hopcroft-Karp. scipy.sparse.csgraph.maximum_bipartite_matching never marks a
# vertex whose depth-first subtree failed (scipy gh-26147), so on the layered
# graphs of two nearby parallel boundaries it re-expands the same subtrees
# exponentially often (a 375x500 map against itself shifted by 5 px at 5.43 px
# did not finish in 900 s). Here a vertex whose search fails is marked dead
# (dist = INF) for the rest of the phase, so every phase is O(E) and the whole
# matching O(E sqrt(V)). Compiled with numba when it is installed (a declared
# dependency); the same code runs as plain Python otherwise, only slower.
@_compiled
def _hopcroft_karp(indptr, indices, active, match_l, match_r):
    """Grow ``match_l`` / ``match_r`` (-1 = free) to a maximum matching; return its size.

    Only ``active`` left vertices take part (an inactive one must be free).
    Any valid starting matching is accepted (a warm start from the previous
    threshold); the result is maximum regardless.
    """
    nl = indptr.shape[0] - 1
    INF = nl + 2
    dist = np.empty(nl, np.int64)
    queue = np.empty(nl, np.int64)
    it = np.empty(nl, np.int64)
    stack = np.empty(nl + 1, np.int64)
    while True:
        qt = 0
        for u in range(nl):
            if active[u] and match_l[u] < 0 and indptr[u + 1] > indptr[u]:
                dist[u] = 0
                queue[qt] = u
                qt += 1
            else:
                dist[u] = INF
        limit = INF
        qh = 0
        while qh < qt:  # BFS layers up to the shortest augmenting length
            u = queue[qh]
            qh += 1
            if dist[u] + 1 >= limit:
                break
            for e in range(indptr[u], indptr[u + 1]):
                w = match_r[indices[e]]
                if w < 0:
                    limit = dist[u] + 1
                elif dist[w] == INF:
                    dist[w] = dist[u] + 1
                    queue[qt] = w
                    qt += 1
        if limit == INF:
            break
        for u0 in range(nl):  # DFS along the layers, dead ends marked
            if dist[u0] != 0 or match_l[u0] >= 0:
                continue
            sp = 0
            stack[0] = u0
            it[u0] = indptr[u0]
            found = False
            while sp >= 0:
                x = stack[sp]
                if it[x] == indptr[x + 1]:
                    dist[x] = INF  # dead end: never expanded again in this phase
                    sp -= 1
                    if sp >= 0:
                        it[stack[sp]] += 1
                    continue
                w = match_r[indices[it[x]]]
                if w < 0:
                    if dist[x] + 1 == limit:
                        found = True
                        break
                    it[x] += 1
                elif dist[w] == dist[x] + 1 and dist[w] < limit:
                    sp += 1
                    stack[sp] = w
                    it[w] = indptr[w]
                else:
                    it[x] += 1
            if found:
                for k in range(sp + 1):
                    x = stack[k]
                    v = indices[it[x]]
                    match_l[x] = v
                    match_r[v] = x
                    dist[x] = INF  # used: vertex-disjoint paths within a phase
    n = 0
    for u in range(nl):
        if match_l[u] >= 0:
            n += 1
    return n


def maximum_matching(indptr: np.ndarray, indices: np.ndarray, n_right: int,
                     active: np.ndarray | None = None) -> np.ndarray:
    """``match_l`` of a maximum matching of a CSR bipartite graph (-1 = unmatched)."""
    nl = indptr.size - 1
    match_l = np.full(nl, -1, np.int64)
    match_r = np.full(n_right, -1, np.int64)
    act = np.ones(nl, np.bool_) if active is None else np.ascontiguousarray(active, np.bool_)
    _hopcroft_karp(np.ascontiguousarray(indptr, np.int64), np.ascontiguousarray(indices, np.int64), act,
                   match_l, match_r)
    return match_l


def _count(pys: np.ndarray, pxs: np.ndarray, gt: _GroundTruth) -> int:
    if pys.size == 0 or gt.n == 0:
        return 0
    indptr, indices = gt.graph(pys, pxs)
    return int((maximum_matching(indptr, indices, gt.n) >= 0).sum())


def match_count(pred: np.ndarray, gt: np.ndarray, radius: float) -> int:
    """Number of one-to-one matches between two binary maps within ``radius`` pixels."""
    ys, xs = np.nonzero(pred)
    return _count(ys, xs, _GroundTruth(np.asarray(gt, bool), radius))


def match_pixels(pred: np.ndarray, gt: np.ndarray, radius: float) -> tuple[np.ndarray, float]:
    """Pairs of a minimum-cost maximum-cardinality matching.

    Returns ``pairs`` [K, 4] as (pred_y, pred_x, gt_y, gt_x) and the total
    distance. Solved exactly per connected component of the candidate graph
    with ``linear_sum_assignment`` (a cost of ``big`` marks a non-edge; ``big``
    exceeds any sum of real distances, so cardinality comes first). Dense per
    component: for tests and small maps, not for the benchmark.
    """
    pys, pxs = np.nonzero(pred)
    gys, gxs = np.nonzero(gt)
    G = _GroundTruth(np.asarray(gt, bool), radius)
    if pys.size == 0 or G.n == 0:
        return np.zeros((0, 4), np.int64), 0.0
    pi, gi, d = G.candidates(pys, pxs)
    n_p, n_g = pys.size, G.n
    adj = sparse.coo_matrix((np.ones(pi.size), (pi, n_p + gi)), shape=(n_p + n_g,) * 2)
    _, comp = connected_components(adj, directed=False)
    big = radius * (min(n_p, n_g) + 1) + 1.0
    pairs, total = [], 0.0
    edge_comp = comp[pi]
    order = np.argsort(edge_comp, kind="stable")
    bounds = np.flatnonzero(np.diff(edge_comp[order])) + 1
    for sel in np.split(order, bounds):
        if sel.size == 0:
            continue
        rows, r_inv = np.unique(pi[sel], return_inverse=True)
        cols, c_inv = np.unique(gi[sel], return_inverse=True)
        cost = np.full((rows.size, cols.size), big)
        cost[r_inv, c_inv] = d[sel]
        ri, ci = linear_sum_assignment(cost)
        ok = cost[ri, ci] < big
        for a, b in zip(rows[ri[ok]], cols[ci[ok]]):
            pairs.append((pys[a], pxs[a], gys[b], gxs[b]))
        total += float(cost[ri[ok], ci[ok]].sum())
    return np.asarray(pairs, np.int64).reshape(-1, 4), total


@_compiled
def _candidate_graph(ids, R, dy, dx, ys, xs):
    """CSR (indptr, gt ids) of the pairs within the disc, for pixels (ys, xs)."""
    n = ys.shape[0]
    indptr = np.zeros(n + 1, np.int64)
    for i in range(n):
        c = 0
        for k in range(dy.shape[0]):
            if ids[ys[i] + R + dy[k], xs[i] + R + dx[k]] >= 0:
                c += 1
        indptr[i + 1] = indptr[i] + c
    indices = np.empty(indptr[n], np.int64)
    for i in range(n):
        e = indptr[i]
        for k in range(dy.shape[0]):
            g = ids[ys[i] + R + dy[k], xs[i] + R + dx[k]]
            if g >= 0:
                indices[e] = g
                e += 1
    return indptr, indices


def threshold_counts(E: np.ndarray, gts: Sequence[np.ndarray], thresholds: np.ndarray, radius: float,
                     strict: bool, do_thin: bool = True) -> np.ndarray:
    """Binarise at every threshold, thin, match against every annotator; [T, 4] counts.

    As ``evaluation_bdry_image``: cntP counts predicted pixels matched to ANY
    annotator, cntR and sumR sum over annotators. Thresholds are compared in
    the map's precision (float32 for SEISM's single maps: float32(51/255) ==
    float32(0.2), so ``>`` leaves out, ``>=`` keeps, a value equal to a
    threshold as on the real numbers).

    Cost: the pixels are sorted once, so each binarisation is a prefix of that
    order (identical binarisations are evaluated once); thinning is compiled
    and visits only foreground pixels; the candidate pairs of the union of
    all thinned maps are built once; the thresholds are then matched from the
    highest (fewest pixels) down, each warm-started from the previous
    matching (exact from any start: Hopcroft-Karp only augments).
    """
    T = len(thresholds)
    h, w = E.shape
    dt = E.dtype if E.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    th = np.asarray(thresholds, np.float64).astype(dt)  # compared in the map's precision
    flat = E.ravel().astype(dt)
    nz = np.flatnonzero(flat > 0) if th.min() > 0 else np.arange(flat.size)
    order = nz[np.argsort(-flat[nz], kind="stable")]  # brightest first
    vals = -flat[order]  # ascending
    n_on = np.searchsorted(vals, -th, side="left" if strict else "right")  # pixels with E > t (E >= t)
    out = np.zeros((T, 4), np.int64)
    out[:, 1] = sum(int(np.count_nonzero(g)) for g in gts)
    W = w + 2
    padded = (order // w + 1) * W + (order % w + 1)  # flat index in the zero-bordered image
    offs = _offsets(W)
    img = np.zeros((h + 2) * W, np.uint8)
    maps: dict[int, np.ndarray] = {}  # pixels on -> flat (unpadded) indices of the thinned map
    for k in sorted({int(v) for v in n_on if v > 0}):
        if do_thin:
            img[:] = 0
            img[padded[:k]] = 1
            kept = _thin_kernel(img, offs, _LUT1, _LUT2, padded[:k])
            maps[k] = (kept // W - 1) * w + (kept % W - 1)
        else:
            maps[k] = order[:k]
    if not maps:
        return out
    mark = np.zeros(h * w, bool)
    for idx in maps.values():
        mark[idx] = True
    union = np.flatnonzero(mark)
    uy, ux = np.divmod(union, w)
    # left vertices: union pixels with a candidate for at least one annotator
    graphs, near = [], np.zeros(union.size, bool)
    for g in gts:
        G = _GroundTruth(np.asarray(g, bool), radius)
        if G.n == 0:
            graphs.append(None)
            continue
        indptr, indices = G.graph(uy, ux)
        near |= np.diff(indptr) > 0
        graphs.append((indptr, indices, G.n))
    pos = np.full(h * w, -1, np.int64)
    left = union[near]
    pos[left] = np.arange(left.size)
    state = []
    for gr in graphs:
        if gr is None:
            continue
        indptr, indices, n_g = gr
        deg = np.diff(indptr)[near]
        sub_ptr = np.zeros(left.size + 1, np.int64)
        np.cumsum(deg, out=sub_ptr[1:])
        keep = np.repeat(near, np.diff(indptr))
        state.append((sub_ptr, indices[keep], np.full(left.size, -1, np.int64), np.full(n_g, -1, np.int64)))
    done: dict[int, tuple[int, int]] = {}
    prev = np.zeros(left.size, bool)
    for k in sorted(maps):  # fewest pixels first
        p = pos[maps[k]]
        active = np.zeros(left.size, bool)
        active[p[p >= 0]] = True
        gone = prev & ~active
        acc = np.zeros(left.size, bool)
        cnt_r = 0
        for sub_ptr, sub_idx, ml, mr in state:
            drop = gone & (ml >= 0)
            mr[ml[drop]] = -1
            ml[drop] = -1
            cnt_r += _hopcroft_karp(sub_ptr, sub_idx, active, ml, mr)
            acc |= ml >= 0
        done[k] = (cnt_r, int(np.count_nonzero(acc)))
        prev = active
    for i in range(T):
        k = int(n_on[i])
        if k:
            out[i, 0], out[i, 2] = done[k]
            out[i, 3] = maps[k].size
    return out


# ----------------------------------------------------------------------------------
# summaries of counts


def fmeasure(r, p) -> np.ndarray:
    """F = 2PR / (P + R), 0 where P + R = 0."""
    r, p = np.asarray(r, np.float64), np.asarray(p, np.float64)
    s = p + r
    return 2 * p * r / (s + (s == 0))


def recall_precision(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R = cntR / sumR and P = cntP / sumP of counts [..., 4], 0 where a sum is 0 (BSDS)."""
    cntR, sumR, cntP, sumP = (np.asarray(counts)[..., k].astype(np.float64) for k in range(4))
    return cntR / (sumR + (sumR == 0)), cntP / (sumP + (sumP == 0))


def max_f_interp(thresholds, R, P):
    """BSDS ``maxF``: best (t, R, P, F) along straight lines between neighbouring thresholds
    (100 steps each); the first maximum, as BSDS's strict '>' update."""
    best = (thresholds[0], R[0], P[0], float(fmeasure(R[0], P[0])))
    if len(thresholds) > 1:
        d = np.linspace(0, 1, 100)[None, :]
        t = thresholds[1:, None] * d + thresholds[:-1, None] * (1 - d)
        r = R[1:, None] * d + R[:-1, None] * (1 - d)
        p = P[1:, None] * d + P[:-1, None] * (1 - d)
        f = fmeasure(r, p)
        k = int(np.argmax(f))
        if f.flat[k] > best[3]:
            best = (t.flat[k], r.flat[k], p.flat[k], float(f.flat[k]))
    return best


#: recall 0:0.01:1 as MATLAB's colon gives it (to the ulp; numpy's linspace differs in 10 places)
_RECALL_GRID = np.round(np.arange(101) * 0.01, 12)


def average_precision(R: np.ndarray, P: np.ndarray, repeated: str = "first", one_recall: str = "zero") -> float:
    """Area under the PR curve as BSDS and SEISM take it: P linearly interpolated on recall
    0:0.01:1 (0 outside the recall range), summed x 0.01.

    ``repeated``: which precision a repeated recall keeps: ``"first"`` (the first occurrence,
    today's MATLAB ``unique``; BSDS and SEISM) or ``"last"`` (legacy ``unique``: the highest
    threshold's). ``one_recall``: with a single distinct recall (a binary map: the same pixels
    at every threshold) ``"zero"`` gives 0 as MATLAB, ``"area"`` gives R x P, the area under
    that one point, so that a perfect prediction has AP 1.
    """
    R, P = np.asarray(R, np.float64), np.asarray(P, np.float64)
    if repeated == "first":
        _, k = np.unique(R, return_index=True)
        Ru, Pu = R[k], P[k]
    else:
        order = np.argsort(R, kind="stable")
        Rs, Ps = R[order], P[order]
        last = np.r_[Rs[1:] != Rs[:-1], True]
        Ru, Pu = Rs[last], Ps[last]
    if Ru.size < 2:
        return float(Ru[0] * Pu[0]) if Ru.size and one_recall == "area" else 0.0
    Pi = np.interp(_RECALL_GRID, Ru, Pu)
    Pi[(_RECALL_GRID < Ru[0]) | (_RECALL_GRID > Ru[-1])] = 0.0
    return float(Pi.sum() * 0.01)


def matlab_linspace(a: float, b: float, n: int) -> np.ndarray:
    """MATLAB's ``linspace``: a + (k * (b - a)) / (n - 1), endpoints exact (rounds as MATLAB, not numpy)."""
    if n == 1:
        return np.array([b], np.float64)
    k = np.arange(n, dtype=np.float64)
    y = a + (k * (b - a)) / (n - 1)
    y[0], y[-1] = a, b
    return y
