"""One composite of primitives per object class, so a class is visible in shape, not only in colour.

Shapes are built in the object's local frame: metres, z up, origin at the centre of the footprint on the floor
(or, for wall-mounted classes, on the wall at floor level), front facing +y. A part's colour is ``"main"`` (the
object's named colour), ``"accent"`` (a darker shade of it) or a fixed RGB triple.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from univlg.data.synthetic.primitives import BOX, ELLIPSOID, FRUSTUM

NAMED_COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.80, 0.12, 0.12),
    "orange": (0.95, 0.50, 0.08),
    "yellow": (0.95, 0.85, 0.15),
    "green": (0.15, 0.60, 0.20),
    "blue": (0.12, 0.30, 0.85),
    "purple": (0.50, 0.20, 0.70),
    "pink": (0.98, 0.55, 0.72),
    "brown": (0.45, 0.26, 0.12),
    "white": (0.93, 0.93, 0.91),
    "black": (0.09, 0.09, 0.10),
}
METAL = (0.62, 0.63, 0.66)
DARK = (0.05, 0.05, 0.07)
GLASS = (0.62, 0.80, 0.92)
LINEN = (0.90, 0.88, 0.84)
LEAVES = ((0.13, 0.45, 0.15), (0.22, 0.55, 0.18), (0.10, 0.38, 0.22))


@dataclass(frozen=True)
class Part:
    """One primitive of a shape, in the object's local frame.

    centre: (3,) metres; half: (3,) half extents of the unit shape's x, y, z (a frustum's z is its axis);
    colour: "main", "accent" or RGB; radii: frustum (bottom, top) in unit coordinates; axis: the local axis the
    unit shape's z maps to ("z" upright, "x" or "y" lying).
    """

    kind: int
    centre: tuple[float, float, float]
    half: tuple[float, float, float]
    colour: str | tuple[float, float, float] = "main"
    radii: tuple[float, float] = (1.0, 1.0)
    axis: str = "z"


@dataclass(frozen=True)
class Surface:
    """A horizontal rectangle other objects can stand on: local (x0, y0, x1, y1) at height z."""

    rect: tuple[float, float, float, float]
    z: float


@dataclass
class Shape:
    """A class's composite: parts, the local bounding size (x, y, z), and where other objects can go."""

    parts: list[Part]
    size: tuple[float, float, float]
    tops: list[Surface] = field(default_factory=list)
    under: Surface | None = None


def _box(c, h, colour="main") -> Part:
    return Part(BOX, tuple(c), tuple(h), colour)


def _cyl(c, radius, half_height, colour="main", radii=(1.0, 1.0), axis="z") -> Part:
    return Part(FRUSTUM, tuple(c), (radius, radius, half_height), colour, radii, axis)


def _ball(c, h, colour="main") -> Part:
    return Part(ELLIPSOID, tuple(c), tuple(h), colour)


def table(rng: np.random.Generator, low: bool = False) -> Shape:
    """Flat top on thin round legs; round-top variant on a single pedestal; ``low`` makes a coffee table."""
    height = rng.uniform(0.42, 0.5) if low else rng.uniform(0.70, 0.78)
    if rng.random() < 0.3:
        radius = rng.uniform(0.4, 0.6)
        parts = [
            _cyl((0, 0, height - 0.02), radius, 0.02),
            _cyl((0, 0, height / 2), 0.05, height / 2 - 0.01, "accent"),
            _cyl((0, 0, 0.015), 0.25, 0.015, "accent"),
        ]
        inner = radius * 0.65
        return Shape(parts, (2 * radius, 2 * radius, height), [Surface((-inner, -inner, inner, inner), height)])
    hx, hy = rng.uniform(0.45, 0.8), rng.uniform(0.3, 0.5)
    leg = rng.uniform(0.022, 0.032)
    parts = [_box((0, 0, height - 0.02), (hx, hy, 0.02))]
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(
                _cyl((sx * (hx - 0.06), sy * (hy - 0.06), (height - 0.03) / 2), leg, (height - 0.03) / 2, "accent")
            )
    clear = 0.06 + leg + 0.03
    return Shape(
        parts,
        (2 * hx, 2 * hy, height),
        [Surface((-hx + 0.05, -hy + 0.05, hx - 0.05, hy - 0.05), height)],
        Surface((-hx + clear, -hy + clear, hx - clear, hy - clear), height - 0.05),
    )


def desk(rng: np.random.Generator) -> Shape:
    """Top on a side panel and a drawer unit (front +y), knee space between."""
    height = rng.uniform(0.72, 0.76)
    hx, hy = rng.uniform(0.55, 0.8), rng.uniform(0.28, 0.38)
    unit = rng.uniform(0.18, 0.22)
    leg_h = (height - 0.02) / 2
    parts = [
        _box((0, 0, height - 0.015), (hx, hy, 0.015)),
        _box((-hx + 0.02, 0, leg_h), (0.02, hy - 0.01, leg_h)),
        _box((hx - unit, 0, leg_h), (unit, hy - 0.01, leg_h)),
    ]
    for k in range(3):
        z = leg_h * 2 * (k + 0.5) / 3
        parts.append(_box((hx - unit, hy - 0.005, z), (unit - 0.02, 0.01, leg_h / 3 - 0.02), "accent"))
        parts.append(_ball((hx - unit, hy + 0.01, z), (0.015, 0.015, 0.015), METAL))
    knee = (-hx + 0.07, -hy + 0.03, hx - 2 * unit - 0.05, hy - 0.03)
    return Shape(
        parts,
        (2 * hx, 2 * hy, height),
        [Surface((-hx + 0.05, -hy + 0.05, hx - 0.05, hy - 0.05), height)],
        Surface(knee, height - 0.08),
    )


def chair(rng: np.random.Generator) -> Shape:
    """Seat on four square legs with a backrest at the back (-y)."""
    half = rng.uniform(0.21, 0.25)
    seat = rng.uniform(0.43, 0.48)
    top = rng.uniform(0.85, 0.98)
    parts = [_box((0, 0, seat - 0.025), (half, half, 0.025))]
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(
                _box(
                    (sx * (half - 0.03), sy * (half - 0.03), (seat - 0.04) / 2),
                    (0.018, 0.018, (seat - 0.04) / 2 + 0.005),
                    "accent",
                )
            )
    parts.append(_box((0, -half + 0.02, (seat + top) / 2 - 0.01), (half, 0.02, (top - seat) / 2 + 0.01)))
    return Shape(parts, (2 * half, 2 * half, top))


def sofa(rng: np.random.Generator) -> Shape:
    """Long base, back along -y, an arm at each end, two seat cushions."""
    hx, hy = rng.uniform(0.8, 1.1), rng.uniform(0.4, 0.47)
    seat, back, arm = 0.36, rng.uniform(0.8, 0.9), rng.uniform(0.58, 0.65)
    parts = [
        _box((0, 0, seat / 2), (hx, hy, seat / 2)),
        _box((0, -hy + 0.1, (seat + back) / 2 - 0.01), (hx, 0.1, (back - seat) / 2 + 0.01)),
    ]
    for sx in (-1, 1):
        parts.append(_box((sx * (hx - 0.09), 0, arm / 2), (0.09, hy, arm / 2)))
    inner = hx - 0.18
    for sx in (-1, 1):
        parts.append(_box((sx * inner / 2, 0.1, seat + 0.04), (inner / 2 - 0.01, hy - 0.11, 0.05), "accent"))
    return Shape(
        parts, (2 * hx, 2 * hy, back), [Surface((-inner + 0.1, -hy + 0.22, inner - 0.1, hy - 0.1), seat + 0.09)]
    )


def bed(rng: np.random.Generator) -> Shape:
    """Frame, white mattress, blanket over the foot end, headboard at -y."""
    hx, hy = rng.uniform(0.48, 0.8), rng.uniform(0.98, 1.05)
    frame, mattress, head = 0.3, 0.52, rng.uniform(0.95, 1.15)
    parts = [
        _box((0, 0, frame / 2), (hx, hy, frame / 2)),
        _box((0, 0.02, (frame + mattress) / 2 - 0.01), (hx - 0.03, hy - 0.04, (mattress - frame) / 2 + 0.01), LINEN),
        _box((0, 0.35, mattress + 0.01), (hx - 0.01, hy - 0.38, 0.02)),
        _box((0, -hy + 0.03, head / 2), (hx + 0.02, 0.03, head / 2), "accent"),
    ]
    return Shape(
        parts, (2 * hx + 0.04, 2 * hy, head), [Surface((-hx + 0.1, -hy + 0.12, hx - 0.1, -hy + 0.6), mattress)]
    )


def cabinet(rng: np.random.Generator) -> Shape:
    """Body with two door fronts and two knobs on +y."""
    hx, hy, height = rng.uniform(0.3, 0.6), rng.uniform(0.2, 0.27), rng.uniform(0.6, 1.1)
    parts = [_box((0, 0, height / 2), (hx, hy, height / 2))]
    for sx in (-1, 1):
        parts.append(_box((sx * hx / 2, hy, height / 2), (hx / 2 - 0.02, 0.01, height / 2 - 0.04), "accent"))
        parts.append(_ball((sx * 0.05, hy + 0.02, height * 0.6), (0.018, 0.018, 0.018), METAL))
    return Shape(
        parts, (2 * hx, 2 * hy + 0.04, height), [Surface((-hx + 0.04, -hy + 0.04, hx - 0.04, hy - 0.04), height)]
    )


def bookshelf(rng: np.random.Generator) -> Shape:
    """Open frame (sides, top, bottom, back) with shelves and rows of books."""
    hx, hy, height = rng.uniform(0.35, 0.5), rng.uniform(0.15, 0.18), rng.uniform(1.6, 2.0)
    t = 0.02
    parts = [
        _box((-hx + t, 0, height / 2), (t, hy, height / 2)),
        _box((hx - t, 0, height / 2), (t, hy, height / 2)),
        _box((0, 0, height - t), (hx, hy, t)),
        _box((0, 0, 0.04), (hx, hy, 0.04)),
        _box((0, -hy + 0.01, height / 2), (hx, 0.01, height / 2), "accent"),
    ]
    shelves = int(rng.integers(3, 5))
    for k in range(1, shelves + 1):
        z = 0.08 + (height - 0.1) * k / (shelves + 1)
        parts.append(_box((0, 0, z), (hx - t, hy - 0.01, 0.012)))
    for k in range(shelves + 1):
        base = 0.08 if k == 0 else 0.08 + (height - 0.1) * k / (shelves + 1) + 0.012
        gap = (height - 0.1) / (shelves + 1) - 0.05
        x = -hx + 2 * t + 0.02
        while x < hx - 2 * t - 0.12:
            width = rng.uniform(0.08, 0.2)
            if x + width > hx - 2 * t - 0.01:
                break
            tall = gap * rng.uniform(0.6, 0.9)
            book = tuple(float(v) for v in rng.uniform(0.1, 0.9, 3))
            parts.append(
                _box((x + width / 2, 0.0, base + tall / 2 - 0.002), (width / 2 - 0.004, hy - 0.04, tall / 2), book)
            )
            x += width + rng.uniform(0.0, 0.12)
    return Shape(parts, (2 * hx, 2 * hy, height))


def lamp(rng: np.random.Generator, small: bool = False) -> Shape:
    """Round base, thin pole and a conical shade (main colour); ``small`` makes a table lamp."""
    scale = 0.35 if small else 1.0
    pole = rng.uniform(1.25, 1.5) * scale if not small else rng.uniform(0.3, 0.4)
    base_r = 0.14 * max(scale, 0.5)
    shade_r = rng.uniform(0.18, 0.24) * max(scale, 0.55)
    shade_h = rng.uniform(0.2, 0.28) * max(scale, 0.6)
    parts = [
        _cyl((0, 0, 0.015), base_r, 0.015, METAL),
        _cyl((0, 0, pole / 2 + 0.01), 0.012, pole / 2, METAL),
        _cyl((0, 0, pole + shade_h / 2 - 0.03), shade_r, shade_h / 2, "main", radii=(1.0, 0.6)),
    ]
    return Shape(parts, (2 * shade_r, 2 * shade_r, pole + shade_h - 0.03))


def plant(rng: np.random.Generator, small: bool = False) -> Shape:
    """A tapered pot (main colour) under one to three green leaf balls."""
    scale = rng.uniform(0.45, 0.6) if small else rng.uniform(0.9, 1.3)
    pot_r, pot_h = 0.13 * scale, 0.26 * scale
    parts = [_cyl((0, 0, pot_h / 2), pot_r, pot_h / 2, radii=(0.75, 1.0))]
    top = pot_h
    for k in range(int(rng.integers(1, 4))):
        r = pot_r * rng.uniform(1.3, 1.8)
        offset = rng.uniform(-0.4, 0.4, 2) * pot_r
        z = pot_h + r * 0.8 + k * r * 0.9
        parts.append(_ball((offset[0], offset[1], z), (r, r, r * 1.1), LEAVES[k % 3]))
        top = max(top, z + r * 1.1)
    width = 2 * max(pot_r, max(p.half[0] + abs(p.centre[0]) for p in parts[1:]))
    return Shape(parts, (width, width, top))


def trash_can(rng: np.random.Generator) -> Shape:
    """A bin wider at the top, with a rim and a dark opening."""
    r, height = rng.uniform(0.12, 0.17), rng.uniform(0.3, 0.45)
    parts = [
        _cyl((0, 0, height / 2), r, height / 2, radii=(0.82, 1.0)),
        _cyl((0, 0, height - 0.008), r + 0.012, 0.012, "accent"),
        _cyl((0, 0, height + 0.004), r - 0.015, 0.002, DARK),
    ]
    return Shape(parts, (2 * r + 0.024, 2 * r + 0.024, height + 0.006))


def box(rng: np.random.Generator) -> Shape:
    """A cuboid with an overhanging lid."""
    hx, hy, hz = rng.uniform(0.1, 0.28), rng.uniform(0.1, 0.22), rng.uniform(0.08, 0.2)
    parts = [
        _box((0, 0, hz - 0.01), (hx, hy, hz - 0.01)),
        _box((0, 0, 2 * hz - 0.02), (hx + 0.012, hy + 0.012, 0.025), "accent"),
    ]
    return Shape(
        parts,
        (2 * hx + 0.024, 2 * hy + 0.024, 2 * hz + 0.005),
        [Surface((-hx + 0.03, -hy + 0.03, hx - 0.03, hy - 0.03), 2 * hz + 0.005)],
    )


def ball(rng: np.random.Generator) -> Shape:
    """A sphere."""
    r = rng.uniform(0.1, 0.2)
    return Shape([_ball((0, 0, r), (r, r, r))], (2 * r, 2 * r, 2 * r))


def monitor(rng: np.random.Generator) -> Shape:
    """A flat base, a neck and a bezel with a dark screen facing +y."""
    hx, hz = rng.uniform(0.24, 0.34), rng.uniform(0.15, 0.21)
    lift = rng.uniform(0.1, 0.16)
    parts = [
        _box((0, -0.02, 0.008), (0.11, 0.08, 0.008), "accent"),
        _box((0, -0.04, lift / 2 + 0.01), (0.025, 0.015, lift / 2 + 0.01), "accent"),
        _box((0, -0.01, lift + hz), (hx, 0.022, hz)),
        _box((0, 0.012, lift + hz + 0.005), (hx - 0.018, 0.003, hz - 0.022), DARK),
    ]
    return Shape(parts, (2 * hx, 0.16, lift + 2 * hz))


def door(rng: np.random.Generator) -> Shape:
    """A tall panel on the wall (y = 0 is the wall plane) with a knob and a frame."""
    hx, height = rng.uniform(0.4, 0.47), rng.uniform(2.0, 2.1)
    parts = [
        _box((0, 0.01, height / 2), (hx, 0.025, height / 2)),
        _cyl((hx - 0.08, 0.05, 1.0), 0.012, 0.025, METAL, axis="y"),
        _ball((hx - 0.08, 0.08, 1.0), (0.03, 0.02, 0.03), METAL),
        _box((0, 0.01, height + 0.025), (hx + 0.05, 0.035, 0.03), "accent"),
    ]
    for sx in (-1, 1):
        parts.append(
            _box((sx * (hx + 0.02), 0.01, (height + 0.055) / 2), (0.025, 0.035, (height + 0.055) / 2), "accent")
        )
    return Shape(parts, (2 * hx + 0.09, 0.1, height + 0.055))


def window(rng: np.random.Generator) -> Shape:
    """A frame (main colour) with glass, a cross of mullions and a sill; local z = 0 is the floor."""
    hx, hz = rng.uniform(0.4, 0.8), rng.uniform(0.5, 0.7)
    sill = rng.uniform(0.8, 1.0)
    zc = sill + hz
    parts = [
        _box((0, 0.0, zc), (hx, 0.04, hz)),
        _box((0, 0.0, zc), (hx - 0.05, 0.045, hz - 0.05), GLASS),
        _box((0, 0.0, zc), (0.02, 0.05, hz - 0.05)),
        _box((0, 0.0, zc), (hx - 0.05, 0.05, 0.02)),
        _box((0, 0.06, sill - 0.015), (hx + 0.06, 0.08, 0.02), "accent"),
    ]
    return Shape(parts, (2 * hx + 0.12, 0.14, 2 * hz + sill))


def picture(rng: np.random.Generator) -> Shape:
    """A frame (main colour) around a painted canvas; local z = 0 is the floor."""
    hx, hz = rng.uniform(0.2, 0.5), rng.uniform(0.15, 0.4)
    zc = rng.uniform(1.35, 1.65)
    canvas = tuple(float(v) for v in rng.uniform(0.2, 0.95, 3))
    blob = tuple(float(v) for v in rng.uniform(0.1, 0.9, 3))
    parts = [
        _box((0, 0.005, zc), (hx, 0.02, hz)),
        _box((0, 0.012, zc), (hx - 0.04, 0.02, hz - 0.04), canvas),
        _ball((rng.uniform(-0.4, 0.4) * hx, 0.03, zc + rng.uniform(-0.3, 0.3) * hz), (0.3 * hz, 0.01, 0.3 * hz), blob),
    ]
    return Shape(parts, (2 * hx, 0.05, zc + hz))


def pillow(rng: np.random.Generator) -> Shape:
    """A flattened ellipsoid."""
    hx, hy, hz = rng.uniform(0.2, 0.3), rng.uniform(0.13, 0.18), rng.uniform(0.06, 0.08)
    return Shape([_ball((0, 0, hz - 0.01), (hx, hy, hz))], (2 * hx, 2 * hy, 2 * hz - 0.01))


def cup(rng: np.random.Generator) -> Shape:
    """A small cylinder with a handle and dark coffee on top."""
    r, height = rng.uniform(0.035, 0.045), rng.uniform(0.09, 0.12)
    parts = [
        _cyl((0, 0, height / 2), r, height / 2),
        _box((r + 0.012, 0, height * 0.55), (0.014, 0.006, height * 0.28)),
        _cyl((0, 0, height + 0.001), r * 0.85, 0.002, DARK),
    ]
    return Shape(parts, (2 * r + 0.05, 2 * r, height + 0.003))


BUILDERS = {
    "table": table,
    "desk": desk,
    "chair": chair,
    "sofa": sofa,
    "bed": bed,
    "cabinet": cabinet,
    "bookshelf": bookshelf,
    "lamp": lamp,
    "plant": plant,
    "trash can": trash_can,
    "box": box,
    "ball": ball,
    "monitor": monitor,
    "door": door,
    "window": window,
    "picture": picture,
    "pillow": pillow,
    "cup": cup,
}
OBJECT_CLASSES: tuple[str, ...] = tuple(BUILDERS)
STRUCTURE_CLASSES: tuple[str, ...] = ("wall", "floor", "ceiling")
ALL_CLASSES: tuple[str, ...] = OBJECT_CLASSES + STRUCTURE_CLASSES
WALL_MOUNTED = frozenset({"door", "window", "picture"})
HAS_FRONT = frozenset({"chair", "sofa", "bed", "cabinet", "bookshelf", "desk", "monitor", "door"})
