"""Procedural furnishing of a room: furniture groups against walls, things on tables, pictures above sofas.

Groups make the relations of the language real: a bed with night-stand cabinets to its left and right and pillows
on it, a sofa with a table in front and a picture above, a desk with a chair, a monitor and cups, a dining table
ringed by chairs with cups on it and a box beneath. Floor objects never overlap (oriented-rectangle test), wall
objects never overlap on their wall, and small objects stand on the surfaces their support offers.
"""

from __future__ import annotations

import numpy as np

from univlg.data.synthetic import shapes
from univlg.data.synthetic.shapes import NAMED_COLOURS, Shape, Surface
from univlg.data.synthetic.world import FLOOR_SUPPORT, WALL_SUPPORT, Room, SceneObject, shape_bounds, yaw_matrix

MIN_OBJECTS, MAX_OBJECTS = 8, 25
SINK = 0.004  # objects sink this far into what they stand on, so contact faces are hidden inside solids
_WALL_YAW = (0.0, np.pi / 2, np.pi, -np.pi / 2)
_COLOUR_NAMES = tuple(NAMED_COLOURS)
_FORBIDDEN_COLOURS = {"plant": {"green"}, "monitor": {"black"}}


def rectangles_overlap(a: tuple, b: tuple, margin: float) -> bool:
    """Whether two oriented rectangles (centre (2,), half (2,), yaw) come closer than ``margin`` (SAT test)."""
    axes = []
    corners = []
    for centre, half, yaw in (a, b):
        rot = yaw_matrix(yaw)[:2, :2]
        axes.extend([rot[:, 0], rot[:, 1]])
        signs = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=np.float64)
        corners.append((signs * (np.asarray(half) + margin / 2)) @ rot.T + np.asarray(centre))
    for axis in axes:
        pa, pb = corners[0] @ axis, corners[1] @ axis
        if pa.max() < pb.min() or pb.max() < pa.min():
            return False
    return True


class Furnisher:
    """Places objects into a room of ``size`` (W, D, H), at most :data:`MAX_OBJECTS`, drawing from ``rng``."""

    def __init__(self, rng: np.random.Generator, size: np.ndarray):
        self.rng = rng
        self.size = size
        self.objects: list[SceneObject] = []
        self.footprints: list[tuple] = []  # (centre, half, yaw) of floor objects and keep-out zones
        self.footprint_owner: list[int] = []  # object id of each footprint, -1 for a keep-out zone
        self.wall_spans: list[list[tuple[float, float, float, float]]] = [[], [], [], []]  # (s0, s1, z0, z1)

    # ------------------------------------------------------------------------------------------- basics
    @property
    def full(self) -> bool:
        """Whether the room already holds the most objects allowed."""
        return len(self.objects) >= MAX_OBJECTS

    def colour(self, label: str) -> str:
        """A random named colour allowed for ``label`` (plants are never green, monitors never black)."""
        allowed = [c for c in _COLOUR_NAMES if c not in _FORBIDDEN_COLOURS.get(label, ())]
        return str(allowed[int(self.rng.integers(len(allowed)))])

    def shape(self, label: str, **kwargs) -> Shape:
        """A random shape of class ``label`` (``kwargs`` go to its builder, e.g. ``small=True``)."""
        return shapes.BUILDERS[label](self.rng, **kwargs)

    def wall_length(self, wall: int) -> float:
        """Length in metres of wall 0-3."""
        return float(self.size[0] if wall in (0, 2) else self.size[1])

    def wall_point(self, wall: int, s: float) -> tuple[np.ndarray, np.ndarray]:
        """Room xy of the point ``s`` metres along ``wall`` and the wall's inward normal."""
        w, d = self.size[:2]
        corner = np.array([(0.0, 0.0), (w, 0.0), (w, d), (0.0, d)][wall])
        yaw = _WALL_YAW[wall]
        tangent = np.array([np.cos(yaw), np.sin(yaw)])
        inward = np.array([-np.sin(yaw), np.cos(yaw)])
        return corner + s * tangent, inward

    def add(self, label, shape, position, yaw, support=FLOOR_SUPPORT, wall=-1, colour=None) -> SceneObject:
        """Record an object (position (3,) of its local origin, yaw in radians) with the next id."""
        obj = SceneObject(
            object_id=len(self.objects),
            label=label,
            colour=colour or self.colour(label),
            position=np.asarray(position, dtype=np.float64),
            yaw=float(yaw),
            shape=shape,
            support=support,
            wall=wall,
        )
        self.objects.append(obj)
        if support == FLOOR_SUPPORT:
            self.footprints.append(self.footprint(shape, obj.position, yaw))
            self.footprint_owner.append(obj.object_id)
        return obj

    def footprint(self, shape: Shape, position: np.ndarray, yaw: float) -> tuple:
        """Floor rectangle of ``shape`` placed at ``position`` (3,): (centre (2,), half sizes (2,), yaw)."""
        lo, hi = shape_bounds(shape)
        centre = position[:2] + yaw_matrix(yaw)[:2, :2] @ (0.5 * (lo[:2] + hi[:2]))
        return centre, 0.5 * (hi[:2] - lo[:2]), yaw

    def floor_free(self, rect: tuple, margin: float = 0.08, ignore: tuple = ()) -> bool:
        """Whether a floor rectangle lies in the room, ``margin`` clear of every footprint but those in ``ignore``."""
        centre, half, yaw = rect
        rot = yaw_matrix(yaw)[:2, :2]
        signs = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=np.float64)
        corners = (signs * half) @ rot.T + centre
        if corners.min() < -0.02 or (corners > self.size[:2] + 0.02).any():
            return False
        return not any(
            rectangles_overlap(rect, other, margin) for i, other in enumerate(self.footprints) if i not in ignore
        )

    def wall_free(self, wall: int, s0: float, s1: float, z0: float, z1: float) -> bool:
        """Whether the wall rectangle [s0, s1] x [z0, z1] (metres along the wall, height) is unused."""
        if s0 < 0.05 or s1 > self.wall_length(wall) - 0.05:
            return False
        return not any(a0 < s1 and s0 < a1 and b0 < z1 and z0 < b1 for a0, a1, b0, b1 in self.wall_spans[wall])

    # ---------------------------------------------------------------------------------------- placement
    def on_wall(self, label: str, near: SceneObject | None = None, tries: int = 30) -> SceneObject | None:
        """A door/window/picture on a wall; a picture ``near`` an object hangs above it."""
        if self.full:
            return None
        shape = self.shape(label)
        lo, hi = shape_bounds(shape)
        for _ in range(tries):
            if near is not None:
                wall, s = near.wall, self._along_wall(near)
                lift = max(0.0, near.position[2] + near.shape.size[2] + self.rng.uniform(0.12, 0.3) - lo[2])
            else:
                wall = int(self.rng.integers(4))
                s = self.rng.uniform(0.3, self.wall_length(wall) - 0.3)
                lift = 0.0
            if hi[2] + lift > self.size[2] - 0.08 or wall < 0:
                continue
            if not self.wall_free(wall, s + lo[0] - 0.05, s + hi[0] + 0.05, lo[2] + lift - 0.05, hi[2] + lift + 0.05):
                continue
            point, inward = self.wall_point(wall, s)
            if label == "door":
                keepout = (point + inward * 0.5, np.array([hi[0], 0.5]), _WALL_YAW[wall])
                if not self.floor_free(keepout, margin=0.0):
                    continue
                self.footprints.append(keepout)
                self.footprint_owner.append(-1)
            self.wall_spans[wall].append((s + lo[0], s + hi[0], lo[2] + lift, hi[2] + lift))
            return self.add(label, shape, [point[0], point[1], lift], _WALL_YAW[wall], WALL_SUPPORT, wall)
        return None

    def _along_wall(self, obj: SceneObject) -> float:
        w, d = self.size[:2]
        x, y = obj.position[:2]
        return float([x, y, w - x, d - y][obj.wall])

    def against_wall(self, label: str, shape: Shape | None = None, tries: int = 40) -> SceneObject | None:
        """A floor object with its back to a wall, facing into the room."""
        if self.full:
            return None
        shape = shape or self.shape(label)
        lo, hi = shape_bounds(shape)
        for _ in range(tries):
            wall = int(self.rng.integers(4))
            s = self.rng.uniform(-lo[0] + 0.1, self.wall_length(wall) - hi[0] - 0.1)
            if not self.wall_free(wall, s + lo[0], s + hi[0], 0.0, hi[2]):
                continue
            point, inward = self.wall_point(wall, s)
            position = np.array([*(point + inward * (-lo[1] - 0.01)), -SINK])
            yaw = _WALL_YAW[wall]
            if not self.floor_free(self.footprint(shape, position, yaw)):
                continue
            self.wall_spans[wall].append((s + lo[0], s + hi[0], 0.0, hi[2]))
            return self.add(label, shape, position, yaw, wall=wall)
        return None

    def on_floor_at(self, label, shape, local_xy, anchor: SceneObject, yaw, colour=None) -> SceneObject | None:
        """A floor object at ``local_xy`` in ``anchor``'s frame, if the spot is free."""
        position = anchor.to_room(np.array([[local_xy[0], local_xy[1], 0.0]]))[0]
        position[2] = -SINK
        if self.full or not self.floor_free(self.footprint(shape, position, yaw)):
            return None
        return self.add(label, shape, position, yaw, colour=colour)

    def beside(self, anchor: SceneObject, side: int, label: str, **kwargs) -> SceneObject | None:
        """A floor object to the anchor's local left (-1) or right (+1), aligned with its back."""
        shape = self.shape(label, **kwargs)
        lo, hi = shape_bounds(shape)
        a_lo, a_hi = shape_bounds(anchor.shape)
        gap = self.rng.uniform(0.06, 0.2)
        x = a_hi[0] + gap - lo[0] if side > 0 else a_lo[0] - gap - hi[0]
        y = a_lo[1] - lo[1] + (0.0 if anchor.wall >= 0 else self.rng.uniform(-0.2, 0.2))
        if anchor.wall < 0:
            return self.on_floor_at(label, shape, (x, y), anchor, anchor.yaw)
        s = self._along_wall(anchor) + x
        if not self.wall_free(anchor.wall, s + lo[0], s + hi[0], 0.0, hi[2]):
            return None
        obj = self.on_floor_at(label, shape, (x, y), anchor, anchor.yaw)
        if obj is not None:
            obj.wall = anchor.wall
            self.wall_spans[anchor.wall].append((s + lo[0], s + hi[0], 0.0, hi[2]))
        return obj

    def free_floor(self, label: str, tries: int = 40, **kwargs) -> SceneObject | None:
        """A floor object anywhere free, at a random yaw."""
        if self.full:
            return None
        shape = self.shape(label, **kwargs)
        for _ in range(tries):
            xy = self.rng.uniform(0.3, self.size[:2] - 0.3)
            yaw = self.rng.uniform(-np.pi, np.pi)
            position = np.array([xy[0], xy[1], -SINK])
            if not self.full and self.floor_free(self.footprint(shape, position, yaw), margin=0.15):
                return self.add(label, shape, position, yaw)
        return None

    def on_surface(
        self, parent: SceneObject, surface: Surface, label: str, under: bool = False, face_front: bool = False, **kw
    ) -> SceneObject | None:
        """A small object standing on (or, ``under``, beneath) one of ``parent``'s surfaces."""
        if self.full:
            return None
        shape = self.shape(label, **kw)
        lo, hi = shape_bounds(shape)
        x0, y0, x1, y1 = surface.rect
        if under and hi[2] > surface.z:
            return None
        for _ in range(20):
            rel_yaw = 0.0 if face_front else self.rng.uniform(-np.pi, np.pi)
            rot = yaw_matrix(rel_yaw)[:2, :2]
            half = np.abs(rot) @ (0.5 * (hi[:2] - lo[:2]))
            centre_offset = rot @ (0.5 * (lo[:2] + hi[:2]))
            if x1 - x0 < 2 * half[0] or y1 - y0 < 2 * half[1]:
                return None
            cx = self.rng.uniform(x0 + half[0], x1 - half[0])
            cy = self.rng.uniform(y0 + half[1], y1 - half[1]) if not face_front else y0 + half[1] + 0.02
            local = np.array([cx, cy, 0.0 if under else surface.z]) - np.array([*centre_offset, 0.0])
            position = parent.to_room(local[None])[0] - np.array([0, 0, SINK])
            yaw = parent.yaw + rel_yaw
            rect = self.footprint(shape, position, yaw)
            siblings = [o for o in self.objects if o.support == parent.object_id]
            if any(rectangles_overlap(rect, self.footprint(o.shape, o.position, o.yaw), 0.03) for o in siblings):
                continue
            if under:
                ignore = tuple(i for i, owner in enumerate(self.footprint_owner) if owner == parent.object_id)
                if not self.floor_free(rect, margin=0.03, ignore=ignore):
                    continue
                return self.add(label, shape, position, yaw)
            return self.add(label, shape, position, yaw, support=parent.object_id)
        return None


def random_room(rng: np.random.Generator) -> Room:
    """A room box 4-9 m on a side, 2.5-3 m high, with pale walls, a wooden floor and a white ceiling."""
    size = np.array([rng.uniform(4.0, 9.0), rng.uniform(4.0, 9.0), rng.uniform(2.5, 3.0)])
    wall = np.array([0.86, 0.84, 0.78]) + rng.uniform(-0.08, 0.06, 3)
    floor = np.array([0.55, 0.40, 0.26]) * rng.uniform(0.8, 1.25) + rng.uniform(-0.03, 0.03, 3)
    return Room(
        size=size, wall_albedo=np.clip(wall, 0, 1), floor_albedo=np.clip(floor, 0, 1), ceiling_albedo=np.full(3, 0.95)
    )
