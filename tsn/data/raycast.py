"""Analytic ray/primitive intersection in vectorised numpy (float32).

Every primitive offers ``bound()`` (a bounding sphere, used to cull pixels and
shadow rays cheaply), ``intersect(o, d)`` (the nearest hit distance ``t > EPS``
or ``inf``) and ``normal(p)`` (the outward unit normal at surface points).
Ray origins and directions are tuples of three arrays (or scalars) so that the
same code serves primary rays (one origin, many directions) and shadow rays
(many origins, one direction) through broadcasting. Directions are unit length.

numpy rather than torch: the arrays are small (a primitive's screen rectangle)
and numpy's per-operation overhead is several times lower, which is what
decides the scenes-per-second rate.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-4
INF = np.float32(np.inf)


def _dot(a, b):
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _hit(t, ok):
    return np.where(ok & (t > EPS), t, INF)


class Sphere:
    def __init__(self, c, r):
        self.c = np.asarray(c, np.float32)
        self.r = float(r)

    def bound(self):
        return self.c, self.r

    def intersect(self, o, d):
        oc = (o[0] - self.c[0], o[1] - self.c[1], o[2] - self.c[2])
        b = _dot(oc, d)
        h = b * b - (_dot(oc, oc) - self.r * self.r)
        t = -b - np.sqrt(np.maximum(h, 0))
        return _hit(t, h >= 0)

    def normal(self, p):
        return tuple((p[i] - self.c[i]) / self.r for i in range(3))


class Capsule:
    """A segment a-b swept by a ball of radius r (limbs, torso, neck)."""

    def __init__(self, a, b, r):
        self.a = np.asarray(a, np.float32)
        self.b = np.asarray(b, np.float32)
        self.r = float(r)
        self.ba = self.b - self.a
        self.baba = float(self.ba @ self.ba)

    def bound(self):
        return (self.a + self.b) / 2, float(np.sqrt(self.baba)) / 2 + self.r

    def intersect(self, o, d):
        a, ba, baba, r = self.a, self.ba, self.baba, self.r
        oa = (o[0] - a[0], o[1] - a[1], o[2] - a[2])
        bard = _dot(ba, d)
        baoa = _dot(ba, oa)
        rdoa = _dot(d, oa)
        oaoa = _dot(oa, oa)
        qa = np.maximum(baba - bard * bard, 1e-9)
        qb = baba * rdoa - baoa * bard
        qc = baba * oaoa - baoa * baoa - r * r * baba
        h = qb * qb - qa * qc
        ok = h >= 0
        t_body = (-qb - np.sqrt(np.maximum(h, 0))) / qa
        y = baoa + t_body * bard
        body = ok & (y > 0) & (y < baba)
        # End caps: the ball at whichever end the infinite-cylinder hit lies past.
        near_a = y <= 0
        oc = tuple(np.where(near_a, oa[i], oa[i] - ba[i]) for i in range(3))
        b2 = _dot(d, oc)
        h2 = b2 * b2 - (_dot(oc, oc) - r * r)
        t_cap = -b2 - np.sqrt(np.maximum(h2, 0))
        t = np.where(body, t_body, t_cap)
        return _hit(t, ok & (body | (h2 >= 0)))

    def normal(self, p):
        a, ba = self.a, self.ba
        pa = tuple(p[i] - a[i] for i in range(3))
        h = np.clip(_dot(pa, ba) / self.baba, 0, 1)
        return tuple((pa[i] - h * ba[i]) / self.r for i in range(3))


class YawBox:
    """A box rotated about the vertical axis by ``yaw`` (furniture, crates)."""

    def __init__(self, c, half, yaw):
        self.c = np.asarray(c, np.float32)
        self.h = np.asarray(half, np.float32)
        self.cs, self.sn = float(np.cos(yaw)), float(np.sin(yaw))

    def bound(self):
        return self.c, float(np.linalg.norm(self.h))

    def _local(self, v, shift):
        x = v[0] - (self.c[0] if shift else 0)
        y = v[1] - (self.c[1] if shift else 0)
        z = v[2] - (self.c[2] if shift else 0)
        return (self.cs * x - self.sn * z, y, self.sn * x + self.cs * z)

    def intersect(self, o, d):
        lo = self._local(o, True)
        ld = self._local(d, False)
        tmin = tmax = None
        with np.errstate(divide="ignore", invalid="ignore"):
            for i in range(3):
                inv = np.divide(np.float32(1.0), ld[i])
                t1 = (-self.h[i] - lo[i]) * inv
                t2 = (self.h[i] - lo[i]) * inv
                lo_t, hi_t = np.minimum(t1, t2), np.maximum(t1, t2)
                tmin = lo_t if tmin is None else np.maximum(tmin, lo_t)
                tmax = hi_t if tmax is None else np.minimum(tmax, hi_t)
            return _hit(tmin, tmax >= tmin)

    def normal(self, p):
        lx, ly, lz = self._local(p, True)
        q = np.stack([np.abs(lx) / self.h[0], np.abs(ly) / self.h[1], np.abs(lz) / self.h[2]])
        axis = q.argmax(0)
        sx = np.where(axis == 0, np.sign(lx), 0)
        sy = np.where(axis == 1, np.sign(ly), 0)
        sz = np.where(axis == 2, np.sign(lz), 0)
        # local -> world is the inverse yaw rotation
        return (self.cs * sx + self.sn * sz, sy.astype(np.float32), -self.sn * sx + self.cs * sz)


class Cylinder:
    """Vertical cylinder standing on y = y0 (bottom cap never visible, omitted)."""

    def __init__(self, x, z, y0, r, height):
        self.x, self.z, self.y0, self.r, self.ht = float(x), float(z), float(y0), float(r), float(height)

    def bound(self):
        c = np.array([self.x, self.y0 + self.ht / 2, self.z], np.float32)
        return c, float(np.hypot(self.r, self.ht / 2))

    def intersect(self, o, d):
        ox, oy, oz = o[0] - self.x, o[1], o[2] - self.z
        a = np.maximum(d[0] * d[0] + d[2] * d[2], 1e-9)
        b = ox * d[0] + oz * d[2]
        c = ox * ox + oz * oz - self.r * self.r
        h = b * b - a * c
        t_side = (-b - np.sqrt(np.maximum(h, 0))) / a
        y = oy + t_side * d[1]
        side = _hit(t_side, (h >= 0) & (y >= self.y0) & (y <= self.y0 + self.ht))
        with np.errstate(divide="ignore", invalid="ignore"):
            t_top = (self.y0 + self.ht - oy) / d[1]
        tx, tz = ox + t_top * d[0], oz + t_top * d[2]
        top = _hit(t_top, np.isfinite(t_top) & (tx * tx + tz * tz <= self.r * self.r))
        return np.minimum(side, top)

    def normal(self, p):
        top = p[1] >= self.y0 + self.ht - 1e-3
        nx, nz = (p[0] - self.x) / self.r, (p[2] - self.z) / self.r
        return np.where(top, 0, nx), np.where(top, 1, 0).astype(np.float32), np.where(top, 0, nz)


class Cone:
    """Upright cone: base radius r on y = y0, apex ``height`` above."""

    def __init__(self, x, z, y0, r, height):
        self.apex = np.array([x, y0 + height, z], np.float32)
        self.y0, self.r, self.ht = float(y0), float(r), float(height)
        self.k2 = (self.r / self.ht) ** 2

    def bound(self):
        # the circumscribed sphere of base disc and apex
        h, r = self.ht, self.r
        yc = max((h * h - r * r) / (2 * h), 0.0)
        c = np.array([self.apex[0], self.y0 + yc, self.apex[2]], np.float32)
        return c, float(h - yc if yc > 0 else r)

    def intersect(self, o, d):
        qx, qy, qz = o[0] - self.apex[0], o[1] - self.apex[1], o[2] - self.apex[2]
        k2 = self.k2
        a = d[0] * d[0] + d[2] * d[2] - k2 * d[1] * d[1]
        b = qx * d[0] + qz * d[2] - k2 * qy * d[1]
        c = qx * qx + qz * qz - k2 * qy * qy
        h = b * b - a * c
        sq = np.sqrt(np.maximum(h, 0))
        a = np.where(np.abs(a) < 1e-9, 1e-9, a)
        r1, r2 = (-b - sq) / a, (-b + sq) / a
        t1, t2 = np.minimum(r1, r2), np.maximum(r1, r2)
        out = INF
        for t in (t2, t1):  # t1 last so that it wins where both are valid
            y = qy + t * d[1]
            out = np.where((h >= 0) & (t > EPS) & (y <= 0) & (y >= -self.ht), t, out)
        return out

    def normal(self, p):
        qx, qy, qz = p[0] - self.apex[0], p[1] - self.apex[1], p[2] - self.apex[2]
        ny = -self.k2 * qy
        n = np.sqrt(qx * qx + ny * ny + qz * qz) + 1e-12
        return qx / n, ny / n, qz / n


def normalize3(v):
    n = np.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    n = np.where(n > 0, n, 1)
    return v[0] / n, v[1] / n, v[2] / n
