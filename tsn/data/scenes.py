"""Procedural indoor scenes and their exact six-task ground truth.

A scene is a room (floor, back wall, two side walls, open top = sky) seen by a
randomly posed pinhole camera, with 3 to 8 objects standing on the floor (in
most scenes the first of them a foreground subject, see :data:`FRAMINGS`). All
labels come from the same ray cast as the image, so they agree with it
exactly; nothing is hand-drawn.

Classes (semseg): 0 background (sky above the walls), 1 floor, 2 wall,
3 sphere, 4 box, 5 cylinder, 6 cone, 7 table, 8 chair, 9 person. Colours and
textures are drawn independently of the class, so shape is what identifies it.

Parts (PASCAL human-parts convention): 0 background, 1 head, 2 torso (and
neck), 3 upper arm, 4 lower arm (and hand), 5 upper leg, 6 lower leg (and
foot). An image without a visible person has parts all 255, as in PASCAL.

Saliency rule: the single object instance (classes 3-9) with the most visible
pixels; all zero when no object is visible.

Edges: one-pixel boundaries between different instances (each wall, the floor,
the sky and each object are instances), drawn on the nearer side of the
boundary, like PASCAL-Context's label-map boundaries.

Depth is z-depth in metres (0 on the sky); normals are unit vectors in the
camera frame with x right, y up, z towards the camera (zero on the sky).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tsn.data.raycast import INF, Capsule, Cone, Cylinder, Sphere, YawBox, normalize3

CLASS_NAMES = ("background", "floor", "wall", "sphere", "box", "cylinder", "cone", "table", "chair", "person")
PART_NAMES = ("background", "head", "torso", "upper_arm", "lower_arm", "upper_leg", "lower_leg")
OBJECT_CLASSES = CLASS_NAMES[3:]
PERSON = CLASS_NAMES.index("person")
N_ROOM = 5  # surface ids 0 sky, 1 floor, 2 back wall, 3 left wall, 4 right wall
ROOM_CLASS = (0, 1, 2, 2, 2)


@dataclass
class Texture:
    kind: str  # plain | stripes | checks | noise
    c1: np.ndarray
    c2: np.ndarray
    scale: float = 1.0
    dirs: np.ndarray | None = None  # unit vectors (stripes: 1, noise: 3)
    phases: np.ndarray | None = None


@dataclass
class Obj:
    cls: int
    center: np.ndarray
    radius: float  # footprint radius on the floor, for placement
    prims: list = field(default_factory=list)  # (primitive, part id, colour slot)
    colours: list = field(default_factory=list)  # per slot (c1, c2)
    texture: Texture | None = None
    ks: float = 0.0  # specular strength


@dataclass
class Scene:
    cam_pos: np.ndarray
    cam_rot: np.ndarray  # columns: right, up, back (world from camera)
    focal: float
    room: tuple  # (half width, back wall z, wall height)
    room_tex: list  # Texture per surface 1..4
    light: np.ndarray  # unit vector towards the light
    light_col: np.ndarray
    ambient: float
    sky: tuple  # (horizon colour, zenith colour)
    objects: list
    exposure: float
    noise: float


# ----------------------------------------------------------------------------- sampling


def _colour(rng, sat=(0.2, 0.9), val=(0.35, 0.95)) -> np.ndarray:
    h, s, v = rng.uniform(0, 1), rng.uniform(*sat), rng.uniform(*val)
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i], np.float32)


def _unit(rng) -> np.ndarray:
    v = rng.normal(size=3)
    return (v / np.linalg.norm(v)).astype(np.float32)


def _texture(rng, kinds=("plain", "stripes", "checks", "noise"), probs=None, sat=(0.2, 0.9), val=(0.35, 0.95)):
    kind = str(rng.choice(kinds, p=probs))
    c1 = _colour(rng, sat, val)
    c2 = _colour(rng, sat, val) if rng.uniform() < 0.5 else np.clip(c1 * rng.uniform(0.45, 0.75), 0, 1)
    tex = Texture(kind, c1, c2)
    if kind == "stripes":
        tex.scale, tex.dirs = rng.uniform(3, 10), _unit(rng)[None]
    elif kind == "checks":
        tex.scale = rng.uniform(0.08, 0.3)
    elif kind == "noise":
        tex.scale = rng.uniform(2, 7)
        tex.dirs = np.stack([_unit(rng) for _ in range(3)])
        tex.phases = rng.uniform(0, 2 * math.pi, size=3).astype(np.float32)
    return tex


def _rot_y(v, yaw):
    cs, sn = math.cos(yaw), math.sin(yaw)
    return np.array([cs * v[0] + sn * v[2], v[1], -sn * v[0] + cs * v[2]], np.float32)


def _limb_dir(swing, abduct, side):
    """Unit vector of a limb hanging down, swung forward by ``swing`` and out sideways by ``abduct``."""
    return np.array(
        [side * math.sin(abduct), -math.cos(abduct) * math.cos(swing), math.cos(abduct) * math.sin(swing)],
        np.float32,
    )


def _person(rng, s: float):
    """Body-frame capsule figure (x lateral, y up, z forward) in a random walking/waving pose."""
    parts = []  # (kind, args, part, slot)
    parts.append(("capsule", ((0, 1.02 * s, 0), (0, 1.33 * s, 0), 0.15 * s), 2, 1))  # torso
    parts.append(("capsule", ((0, 1.45 * s, 0), (0, 1.56 * s, 0.01 * s), 0.05 * s), 2, 0))  # neck
    parts.append(("sphere", ((0, 1.645 * s, 0.015 * s), 0.105 * s), 1, 0))  # head
    phase, amp = rng.uniform(0, 2 * math.pi), rng.uniform(0, 0.6)
    for side in (-1, 1):
        swing = side * amp * math.sin(phase)
        hip = np.array([side * 0.09 * s, 0.93 * s, 0], np.float32)
        knee = hip + 0.43 * s * _limb_dir(swing, rng.uniform(0, 0.1), side)
        bend = rng.uniform(0, 0.25) + 0.8 * max(0.0, -swing)
        ankle = knee + 0.42 * s * _limb_dir(swing - bend, 0.02, side)
        toe = ankle + 0.13 * s * np.array([0.15 * side, -0.12, 1.0], np.float32)
        parts += [
            ("capsule", (hip, knee, 0.075 * s), 5, 2),
            ("capsule", (knee, ankle, 0.06 * s), 6, 2),
            ("capsule", (ankle, toe, 0.045 * s), 6, 4),
        ]
        abd = rng.uniform(1.2, 2.7) if rng.uniform() < 0.25 else rng.uniform(0.08, 0.35)
        aswing = -0.8 * swing + rng.uniform(-0.2, 0.2)
        sh = np.array([side * 0.2 * s, 1.38 * s, 0], np.float32)
        elbow = sh + 0.29 * s * _limb_dir(aswing, abd, side)
        wrist = elbow + 0.27 * s * _limb_dir(aswing + rng.uniform(0, 1.4), abd * rng.uniform(0.6, 1.1), side)
        parts += [("capsule", (sh, elbow, 0.052 * s), 3, 1), ("capsule", (elbow, wrist, 0.043 * s), 4, 3)]
    return parts


def _furniture(rng, cls: str):
    """Body-frame box/cylinder parts of a table or chair (leg style drawn at random)."""
    out = []
    if cls == "table":
        hx, hz = rng.uniform(0.35, 0.8), rng.uniform(0.3, 0.55)
        top_h, th = rng.uniform(0.65, 0.8), rng.uniform(0.02, 0.04)
    else:
        hx = hz = rng.uniform(0.19, 0.26)
        top_h, th = rng.uniform(0.42, 0.5), rng.uniform(0.025, 0.04)
    out.append(("box", ((0, top_h - th, 0), (hx, th, hz)), 0, 0))
    w = rng.uniform(0.022, 0.045)
    inset = w + rng.uniform(0, 0.06)
    leg_h = top_h - 2 * th
    round_legs = rng.uniform() < 0.5
    for sx in (-1, 1):
        for sz in (-1, 1):
            c = (sx * (hx - inset), leg_h / 2, sz * (hz - inset))
            out.append(("cyl", (c, w, leg_h), 0, 1) if round_legs else ("box", (c, (w, leg_h / 2, w)), 0, 1))
    if cls == "chair":
        bt, bh = rng.uniform(0.02, 0.04), rng.uniform(0.82, 1.0)
        out.append(("box", ((0, (top_h + bh) / 2, -(hz - bt)), (hx, (bh - top_h) / 2, bt)), 0, 0))
    return out, float(math.hypot(hx, hz))


def _build(kind, args, pos, yaw):
    """Place a body-frame part at ``pos`` rotated by ``yaw`` about the vertical."""
    if kind == "sphere":
        return Sphere(pos + _rot_y(args[0], yaw), args[1])
    if kind == "capsule":
        return Capsule(pos + _rot_y(args[0], yaw), pos + _rot_y(args[1], yaw), args[2])
    if kind == "box":
        return YawBox(pos + _rot_y(args[0], yaw), args[1], yaw)
    if kind == "cyl":
        c = pos + _rot_y(args[0], yaw)
        return Cylinder(c[0], c[2], 0.0, args[1], args[2])
    raise ValueError(kind)


def _object(rng, cls: str):
    """Shape parameters of one object in its body frame: (parts, footprint radius, n colour slots)."""
    if cls == "sphere":
        r = rng.uniform(0.18, 0.5)
        return [("sphere", ((0, r, 0), r), 0, 0)], r, 1
    if cls == "box":
        h = rng.uniform(0.15, 0.5, size=3)
        return [("box", ((0, h[1], 0), tuple(h)), 0, 0)], float(math.hypot(h[0], h[2])), 1
    if cls == "cylinder":
        r = rng.uniform(0.12, 0.35)
        return [("cylinder", (r, rng.uniform(0.3, 1.3)), 0, 0)], r, 1
    if cls == "cone":
        r = rng.uniform(0.18, 0.45)
        return [("cone", (r, rng.uniform(0.45, 1.3)), 0, 0)], r, 1
    if cls in ("table", "chair"):
        parts, rad = _furniture(rng, cls)
        return parts, rad, 2
    if cls == "person":
        parts = _person(rng, rng.uniform(1.5, 1.9) / 1.75)
        return parts, 0.45, 5
    raise ValueError(cls)


def _place_parts(parts, pos, yaw):
    prims = []
    if any(p[0] == "capsule" for p in parts):  # a person: stand the lowest point on the floor
        low = min(min(_rot_y(a[0], yaw)[1], _rot_y(a[1], yaw)[1]) - a[2] for k, a, _, _ in parts if k == "capsule")
        pos = pos - np.array([0, low, 0], np.float32)
    for kind, args, part, slot in parts:
        if kind == "cylinder":
            prim = Cylinder(pos[0], pos[2], 0.0, args[0], args[1])
        elif kind == "cone":
            prim = Cone(pos[0], pos[2], 0.0, args[0], args[1])
        else:
            prim = _build(kind, args, pos, yaw)
        prims.append((prim, part, slot))
    return prims


#: How a scene is framed. ``subject`` (the default) first places one object in the foreground, a
#: person in half of the scenes, so that people and the salient object cover a realistic share
#: of the image as in PASCAL-Context (where people are often large); ``room`` is the earlier
#: generator, with every object drawn at 1.6-6.5 m, where a visible person covered a median 4% of
#: a 64x64 image and its head 12 pixels (52 with ``subject``; ``benchmarks/scene_stats.py``).
FRAMINGS = ("subject", "room")
SUBJECT_PROB = 0.85  # scenes with a foreground subject
SUBJECT_PERSON_PROB = 0.6  # of those, the subject is a person
SUBJECT_DIST = (0.7, 1.6)  # metres from the camera, along the floor


def sample_scene(rng: np.random.Generator, height: int, width: int, framing: str = "subject") -> Scene:
    """Draw a room, a camera, a light and 3-8 non-overlapping objects in view (framed as ``framing``)."""
    if framing not in FRAMINGS:
        raise ValueError(f"framing must be one of {', '.join(FRAMINGS)}, got {framing!r}")
    half_w, back_z, wall_h = rng.uniform(2.5, 4.5), -rng.uniform(3.0, 6.0), rng.uniform(2.6, 3.6)
    cam = np.array([rng.uniform(-0.4, 0.4) * half_w, rng.uniform(1.2, 2.2), rng.uniform(1.5, 3.5)], np.float32)
    yaw, pitch, roll = rng.uniform(-0.45, 0.45), rng.uniform(-0.5, -0.15), rng.uniform(-0.05, 0.05)
    vfov = math.radians(rng.uniform(50, 65))
    focal = (height / 2) / math.tan(vfov / 2)
    fwd = np.array([-math.sin(yaw) * math.cos(pitch), math.sin(pitch), -math.cos(yaw) * math.cos(pitch)])
    right = np.cross(fwd, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, fwd)
    right, up = math.cos(roll) * right + math.sin(roll) * up, -math.sin(roll) * right + math.cos(roll) * up
    rot = np.stack([right, up, -fwd], axis=1).astype(np.float32)

    room_tex = [
        _texture(rng, ("plain", "stripes", "checks", "noise"), (0.25, 0.25, 0.35, 0.15), (0.05, 0.45), (0.35, 0.85))
    ]
    floor = room_tex[0]
    if floor.kind == "checks":
        floor.scale = rng.uniform(0.3, 0.9)  # tiles
    elif floor.kind == "stripes":
        floor.scale = rng.uniform(0.6, 2.5)  # planks along one wall
        floor.dirs = np.array([[1.0, 0.0, 0.0] if rng.uniform() < 0.5 else [0.0, 0.0, 1.0]], np.float32)
    elif floor.kind == "noise":
        floor.scale = rng.uniform(0.3, 1.2)
    wall_tex = _texture(rng, ("plain", "stripes", "noise"), (0.5, 0.3, 0.2), (0.05, 0.35), (0.5, 0.95))
    if wall_tex.kind == "stripes":
        wall_tex.dirs = np.array([[1.0, 0.0, 0.0]], np.float32)  # vertical wallpaper stripes
    room_tex += [wall_tex] * 3

    elev, azim = rng.uniform(0.6, 1.3), rng.uniform(0, 2 * math.pi)
    light = np.array([math.cos(elev) * math.cos(azim), math.sin(elev), math.cos(elev) * math.sin(azim)], np.float32)

    g = np.array([fwd[0], 0.0, fwd[2]])
    g /= np.linalg.norm(g)
    r_dir = np.array([-g[2], 0.0, g[0]])
    tan_h = (width / 2) / focal
    objects: list[Obj] = []
    n_obj = int(rng.integers(3, 9))
    subject = framing == "subject" and rng.uniform() < SUBJECT_PROB
    for k in range(n_obj):
        hero = subject and k == 0
        if hero and rng.uniform() < SUBJECT_PERSON_PROB:
            cls = "person"
        else:
            cls = str(rng.choice(OBJECT_CLASSES))
        parts, rad, n_slots = _object(rng, cls)
        for _try in range(30):
            if hero:  # in the foreground, towards the middle of the view
                d = rng.uniform(*SUBJECT_DIST)
                u = rng.uniform(-0.35, 0.35) * tan_h * d
            else:
                d = rng.uniform(1.6, 6.5)
                u = rng.uniform(-0.85, 0.85) * tan_h * d
            pos = np.array([cam[0], 0.0, cam[2]]) + d * g + u * r_dir
            if abs(pos[0]) > half_w - rad - 0.05 or pos[2] < back_z + rad + 0.05:
                continue
            if all(np.hypot(*(pos - o.center)[[0, 2]]) > rad + o.radius + 0.05 for o in objects):
                break
        else:
            continue
        pos = pos.astype(np.float32)
        obj = Obj(CLASS_NAMES.index(cls), pos, rad, ks=float(rng.uniform(0, 0.35)))
        obj.prims = _place_parts(parts, pos, rng.uniform(0, 2 * math.pi))
        obj.texture = _texture(rng)
        obj.colours = [(obj.texture.c1, obj.texture.c2)]
        for _ in range(n_slots - 1):
            t = _texture(rng)
            obj.colours.append((t.c1, t.c2))
        if cls == "person" and rng.uniform() < 0.5:
            obj.colours[3] = obj.colours[rng.choice([0, 1])]  # bare arms or long sleeves
        obj.center = pos + np.array([0, 0.5, 0], np.float32)
        objects.append(obj)

    horizon = _colour(rng, (0.0, 0.25), (0.75, 1.0))
    return Scene(
        cam_pos=cam,
        cam_rot=rot,
        focal=focal,
        room=(half_w, back_z, wall_h),
        room_tex=room_tex,
        light=light,
        light_col=(1 + rng.uniform(-0.08, 0.08, size=3)).astype(np.float32),
        ambient=float(rng.uniform(0.25, 0.45)),
        sky=(horizon, np.clip(horizon * np.array([0.7, 0.8, 1.0]), 0, 1).astype(np.float32)),
        objects=objects,
        exposure=float(rng.uniform(0.85, 1.15)),
        noise=float(rng.uniform(0.004, 0.02)),
    )


# ----------------------------------------------------------------------------- rendering


def _screen_rect(c, r, cam, rot, focal, height, width):
    """Pixel rectangle that contains the projection of the sphere (c, r), or None if off screen.

    x/z and y/z over the sphere's bounding cube are extreme at its corners, so four scalar
    ratios bound the projection (cheaper than projecting eight corners)."""
    q = (c - cam) @ rot  # camera coordinates; the camera looks down -z
    z = -float(q[2])
    if z - r < 0.05:
        return 0, height, 0, width
    qx, qy = float(q[0]), float(q[1])
    zn, zf = z - r, z + r
    u0 = min((qx - r) / zn, (qx - r) / zf) * focal + width / 2 - 0.5
    u1 = max((qx + r) / zn, (qx + r) / zf) * focal + width / 2 - 0.5
    v0 = -max((qy + r) / zn, (qy + r) / zf) * focal + height / 2 - 0.5
    v1 = -min((qy - r) / zn, (qy - r) / zf) * focal + height / 2 - 0.5
    j0, j1 = max(int(math.floor(u0)), 0), min(int(math.ceil(u1)) + 1, width)
    i0, i1 = max(int(math.floor(v0)), 0), min(int(math.ceil(v1)) + 1, height)
    if j0 >= j1 or i0 >= i1:
        return None
    return i0, i1, j0, j1


def _pattern(tex: Texture, p):
    """Texture weight in [0, 1] between the two colours at local points p (solid textures)."""
    if tex.kind == "stripes":
        u = tex.dirs[0]
        return (np.sin((p[0] * u[0] + p[1] * u[1] + p[2] * u[2]) * (2 * math.pi * tex.scale)) > 0).astype(np.float32)
    if tex.kind == "checks":
        # half-cell offset: surfaces at round coordinates (the floor at y = 0) must not sit on a cell border
        k = sum(np.floor(p[i] / tex.scale + 0.5) for i in range(3))
        return (k % 2).astype(np.float32)
    if tex.kind == "noise":
        acc = 0.0
        for u, ph in zip(tex.dirs, tex.phases):
            acc = acc + np.sin((p[0] * u[0] + p[1] * u[1] + p[2] * u[2]) * (2 * math.pi * tex.scale) + ph)
        return np.clip(acc * 0.3 + 0.5, 0, 1).astype(np.float32)
    return None


_NOISE: np.ndarray | None = None


def _noise_bank(n: int = 1 << 20) -> np.ndarray:
    """A fixed bank of N(0, 1) samples; each scene reads a random window (drawing fresh normals per
    pixel cost more than the whole ray cast)."""
    global _NOISE
    if _NOISE is None or _NOISE.size < n:
        _NOISE = np.random.default_rng(12345).standard_normal(max(n, 1 << 20), dtype=np.float32)
    return _NOISE


def render(scene: Scene, height: int, width: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Ray-cast the scene; return the uint8 image (H,W,3) and every label map as numpy arrays."""
    H, W = height, width
    cam, rot, f = scene.cam_pos, scene.cam_rot, scene.focal
    jj = (np.arange(W, dtype=np.float32) + 0.5 - W / 2) / f
    ii = -(np.arange(H, dtype=np.float32) + 0.5 - H / 2) / f
    cx, cy = np.broadcast_to(jj[None], (H, W)), np.broadcast_to(ii[:, None], (H, W))
    inv = 1.0 / np.sqrt(cx * cx + cy * cy + 1.0)
    dcx, dcy, dcz = cx * inv, cy * inv, -inv  # unit directions, camera frame
    D = tuple(rot[k, 0] * dcx + rot[k, 1] * dcy + rot[k, 2] * dcz for k in range(3))

    # The room is a convex box around the camera: a ray leaves it through the nearest plane it heads to.
    half_w, back_z, wall_h = scene.room
    with np.errstate(divide="ignore"):
        tx = np.where(D[0] < 0, (-half_w - cam[0]) / D[0], (half_w - cam[0]) / D[0])
        ty = np.where(D[1] < 0, -cam[1] / D[1], (wall_h - cam[1]) / D[1])
        tz = np.where(D[2] < 0, (back_z - cam[2]) / D[2], (50.0 - cam[2]) / D[2])
    tbuf = np.minimum(np.minimum(tx, ty), tz).astype(np.float32)
    sid = np.where(tx <= np.minimum(ty, tz), np.where(D[0] < 0, 3, 4), np.where(ty <= tz, np.where(D[1] < 0, 1, 0), np.where(D[2] < 0, 2, 0)))
    sid = sid.astype(np.int32)

    prims, p_cls, p_part, p_inst, p_obj, p_slot = [], [], [], [], [], []
    for oi, obj in enumerate(scene.objects):
        for prim, part, slot in obj.prims:
            prims.append(prim)
            p_cls.append(obj.cls), p_part.append(part), p_inst.append(N_ROOM + oi), p_obj.append(oi), p_slot.append(slot)
    for k, prim in enumerate(prims):
        c, r = prim.bound()
        rect = _screen_rect(c, r, cam, rot, f, H, W)
        if rect is None:
            continue
        i0, i1, j0, j1 = rect
        d = (D[0][i0:i1, j0:j1], D[1][i0:i1, j0:j1], D[2][i0:i1, j0:j1])
        t = prim.intersect(cam, d)
        tb, sb = tbuf[i0:i1, j0:j1], sid[i0:i1, j0:j1]
        m = t < tb
        tb[m] = t[m]
        sb[m] = N_ROOM + k

    n_sid = N_ROOM + len(prims)
    cls_lut = np.array(list(ROOM_CLASS) + p_cls, np.int64)
    part_lut = np.array([0] * N_ROOM + p_part, np.int64)
    inst_lut = np.array(list(range(N_ROOM)) + p_inst, np.int64)

    sid_f = sid.ravel()
    t_f = tbuf.ravel()
    sky = sid_f == 0
    Df = tuple(x.ravel() for x in D)
    P = tuple(cam[k] + t_f * Df[k] for k in range(3))
    N = [np.zeros(H * W, np.float32) for _ in range(3)]
    order = np.argsort(sid_f, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(sid_f, minlength=n_sid))])
    room_n = {1: (0, 1, 0), 2: (0, 0, 1), 3: (1, 0, 0), 4: (-1, 0, 0)}
    for s, n in room_n.items():
        idx = order[starts[s] : starts[s + 1]]
        for k in range(3):
            N[k][idx] = n[k]
    for k, prim in enumerate(prims):
        s = N_ROOM + k
        if starts[s] == starts[s + 1]:
            continue
        idx = order[starts[s] : starts[s + 1]]
        n = prim.normal((P[0][idx], P[1][idx], P[2][idx]))
        for a in range(3):
            N[a][idx] = n[a]
    N = list(normalize3(N))
    facing = N[0] * Df[0] + N[1] * Df[1] + N[2] * Df[2]
    flip = np.where(facing > 0, -1.0, 1.0).astype(np.float32)
    N = [n * flip for n in N]

    # ---- shadows (objects cast onto everything), traced towards the light from lit surface points
    L = scene.light
    ndl = np.maximum(N[0] * L[0] + N[1] * L[1] + N[2] * L[2], 0)
    lit = np.flatnonzero((ndl > 0) & ~sky)
    shadow = np.zeros(lit.size, bool)
    if prims and lit.size:
        O = tuple(P[k][lit] + 2e-3 * N[k][lit] for k in range(3))

        def towards(c, r, rows):
            """Rows whose shadow ray passes within r of c (ahead of its origin)."""
            v = (c[0] - O[0][rows], c[1] - O[1][rows], c[2] - O[2][rows])
            tc = v[0] * L[0] + v[1] * L[1] + v[2] * L[2]
            d2 = v[0] * v[0] + v[1] * v[1] + v[2] * v[2] - tc * tc
            return rows[(tc > -r) & (d2 < r * r)]

        everything = np.arange(lit.size)
        k = 0
        for obj in scene.objects:
            group = prims[k : k + len(obj.prims)]
            k += len(obj.prims)
            bounds = [p.bound() for p in group]
            centre = np.mean([b[0] for b in bounds], axis=0)
            radius = max(float(np.linalg.norm(b[0] - centre)) + b[1] for b in bounds)
            rows = towards(centre, radius, everything)  # one test per object, then per primitive
            rows = rows[~shadow[rows]]
            for prim, (c, r) in zip(group, bounds):
                if rows.size == 0:
                    break
                ci = towards(c, r, rows) if len(group) > 1 else rows
                if ci.size == 0:
                    continue
                t = prim.intersect((O[0][ci], O[1][ci], O[2][ci]), L)
                shadow[ci[t < INF]] = True
                rows = rows[~shadow[rows]]
    ndl[lit[shadow]] = 0

    # ---- albedo from solid textures, per surface / object
    c1 = np.zeros((n_sid, 3), np.float32)
    c2 = np.zeros((n_sid, 3), np.float32)
    ks = np.zeros(n_sid, np.float32)
    for s in range(1, N_ROOM):
        c1[s], c2[s] = scene.room_tex[s - 1].c1, scene.room_tex[s - 1].c2
    for k in range(len(prims)):
        obj = scene.objects[p_obj[k]]
        c1[N_ROOM + k], c2[N_ROOM + k] = obj.colours[p_slot[k]]
        ks[N_ROOM + k] = obj.ks
    pat = np.zeros(H * W, np.float32)
    groups = [(s, s + 1, scene.room_tex[s - 1], np.zeros(3, np.float32)) for s in range(1, N_ROOM)]
    k = 0
    for oi, obj in enumerate(scene.objects):
        groups.append((N_ROOM + k, N_ROOM + k + len(obj.prims), obj.texture, obj.center))
        k += len(obj.prims)
    for s0, s1, tex, centre in groups:
        if tex.kind == "plain" or starts[s0] == starts[s1]:
            continue
        idx = order[starts[s0] : starts[s1]]
        pat[idx] = _pattern(tex, (P[0][idx] - centre[0], P[1][idx] - centre[1], P[2][idx] - centre[2]))
    hx, hy, hz = normalize3((L[0] - Df[0], L[1] - Df[1], L[2] - Df[2]))
    x2 = np.maximum(N[0] * hx + N[1] * hy + N[2] * hz, 0)
    x2 = x2 * x2
    x8 = x2 * x2
    x8 = x8 * x8
    spec = ks[sid_f] * (x8 * x8 * x8) * (ndl > 0)  # Blinn-Phong, exponent 24 by squaring (pow is slow)
    shade = scene.ambient + (1.15 - scene.ambient) * ndl
    w2 = pat * shade
    w1 = shade - w2
    up = np.clip(Df[1], 0, 1)
    noise = _noise_bank(3 * H * W + 1)
    start = int(rng.integers(0, noise.size - 3 * H * W))
    chans = []
    for c in range(3):  # per channel: 1-D gathers are several times faster than (N, 3) ones
        gain = float(scene.light_col[c]) * scene.exposure * 255
        v = (c1[:, c][sid_f] * w1 + c2[:, c][sid_f] * w2 + spec) * gain
        sky_v = (scene.sky[0][c] * (1 - up[sky]) + scene.sky[1][c] * up[sky]) * (scene.exposure * 255)
        v[sky] = sky_v
        v += noise[start + c * H * W : start + (c + 1) * H * W] * (scene.noise * 255)
        chans.append((np.clip(v, 0, 255) + 0.5).astype(np.uint8))  # 8-bit, like a stored photograph
    rgb = np.stack(chans, -1)

    # ---- labels
    semseg = cls_lut[sid_f].reshape(H, W)
    inst = inst_lut[sid_f].reshape(H, W)
    if (semseg == PERSON).any():
        parts = part_lut[sid_f].reshape(H, W)
    else:
        parts = np.full((H, W), 255, np.int64)
    zdepth = np.where(sky, 0, t_f * -dcz.ravel()).astype(np.float32).reshape(H, W)
    ncam = [sum(rot[a, k] * N[a] for a in range(3)) for k in range(3)]  # camera = rot^T world
    normals = np.stack([np.where(sky, 0, n) for n in ncam]).reshape(3, H, W).astype(np.float32)

    zkey = np.where(zdepth > 0, zdepth, np.inf)
    edge = np.zeros((H, W), bool)
    for axis in (0, 1):
        a = [slice(None), slice(None)]
        b = [slice(None), slice(None)]
        a[axis], b[axis] = slice(None, -1), slice(1, None)
        a, b = tuple(a), tuple(b)
        diff = inst[a] != inst[b]
        a_front = (zkey[a] < zkey[b]) | ((zkey[a] == zkey[b]) & (inst[a] < inst[b]))
        edge[a] |= diff & a_front
        edge[b] |= diff & ~a_front

    counts = np.bincount(inst.ravel(), minlength=N_ROOM + len(scene.objects))
    sal = np.zeros((H, W), bool)
    if counts[N_ROOM:].size and counts[N_ROOM:].max() > 0:
        sal = inst == N_ROOM + int(counts[N_ROOM:].argmax())

    return {
        "image": rgb.reshape(H, W, 3),  # uint8
        "semseg": semseg,
        "parts": parts,
        "normals": normals,
        "depth": zdepth,
        "edge": edge,
        "sal": sal,
        "instances": inst,
    }


def generate(seed_key, height: int = 128, width: int = 128, framing: str = "subject") -> dict[str, np.ndarray]:
    """One scene, determined entirely by ``seed_key`` (a sequence of ints) and ``framing``."""
    rng = np.random.default_rng(list(seed_key))
    scene = sample_scene(rng, height, width, framing)
    return render(scene, height, width, rng)
