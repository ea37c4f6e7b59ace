"""A synthetic room: its box, its objects (class, named colour, pose, shape) and the primitives they are made of.

Coordinates are the room's axis-aligned frame: metres, the floor is z = 0, the room spans [0, W] x [0, D] x [0, H].
Walls are numbered counter-clockwise: 0 is y = 0, 1 is x = W, 2 is y = D, 3 is x = 0. Object ids run over the
objects first and then the structure (four walls, floor, ceiling), so ``labels[i]`` is the class of id ``i``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from univlg.data.synthetic.primitives import Primitives, make_primitives
from univlg.data.synthetic.shapes import NAMED_COLOURS, Shape

FLOOR_SUPPORT = -1
WALL_SUPPORT = -2
AXIS_PERMUTATION = {
    "z": np.eye(3),
    "y": np.array([[1.0, 0, 0], [0, 0, 1], [0, 1, 0]]),
    "x": np.array([[0.0, 0, 1], [0, 1, 0], [1, 0, 0]]),
}


def shape_bounds(shape: Shape) -> tuple[np.ndarray, np.ndarray]:
    """Local bounds of a shape's parts (their unit cubes): lo, hi (3,) float64."""
    unit = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
    corners = [unit @ (AXIS_PERMUTATION[p.axis] @ np.diag(p.half)).T + np.asarray(p.centre) for p in shape.parts]
    stacked = np.concatenate(corners)
    return stacked.min(axis=0), stacked.max(axis=0)


def yaw_matrix(yaw: float) -> np.ndarray:
    """(3, 3) rotation about +z by ``yaw`` radians."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass
class SceneObject:
    """One object: ``position`` (3,) is its local origin in the room; ``support`` the id it stands on
    (FLOOR_SUPPORT, WALL_SUPPORT for wall-mounted objects); ``wall`` the wall it is mounted on or backs onto (-1)."""

    object_id: int
    label: str
    colour: str
    position: np.ndarray
    yaw: float
    shape: Shape
    support: int = FLOOR_SUPPORT
    wall: int = -1

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) local-to-room rotation."""
        return yaw_matrix(self.yaw)

    @property
    def front(self) -> np.ndarray:
        """(3,) unit vector the object faces (its local +y)."""
        return self.rotation[:, 1].copy()

    def to_room(self, local: np.ndarray) -> np.ndarray:
        """Local points (N, 3) to room coordinates (N, 3)."""
        return local @ self.rotation.T + self.position

    def footprint(self) -> tuple[np.ndarray, np.ndarray, float]:
        """The floor footprint as an oriented rectangle: centre (2,), half sizes (2,), yaw."""
        return self.position[:2].copy(), 0.5 * np.asarray(self.shape.size[:2]), self.yaw


@dataclass
class Room:
    """The room box (W, D, H) in metres and its surface albedos (3,) in [0, 1]."""

    size: np.ndarray
    wall_albedo: np.ndarray
    floor_albedo: np.ndarray
    ceiling_albedo: np.ndarray


@dataclass
class World:
    """A room, its objects (ids 0..n-1) and their primitives; ids n..n+5 are walls 0-3, floor, ceiling."""

    room: Room
    objects: list[SceneObject]
    primitives: Primitives = field(repr=False)

    @property
    def num_objects(self) -> int:
        """Number of objects (structure excluded)."""
        return len(self.objects)

    @property
    def structure_ids(self) -> dict[str, tuple[int, ...]]:
        """Ids of the structure: ``{"wall": (4 ids), "floor": (id,), "ceiling": (id,)}``."""
        n = self.num_objects
        return {"wall": (n, n + 1, n + 2, n + 3), "floor": (n + 4,), "ceiling": (n + 5,)}

    @property
    def labels(self) -> list[str]:
        """Class name of every id (objects, then four walls, floor, ceiling)."""
        return [o.label for o in self.objects] + ["wall"] * 4 + ["floor", "ceiling"]

    def room_face_ids(self) -> np.ndarray:
        """(6,) object id of the room faces in the order -x, +x, -y, +y, -z, +z (walls 3, 1, 0, 2, floor, ceiling)."""
        walls, floor, ceiling = self.structure_ids["wall"], self.structure_ids["floor"], self.structure_ids["ceiling"]
        return np.array([walls[3], walls[1], walls[0], walls[2], floor[0], ceiling[0]], dtype=np.int64)

    def room_face_albedo(self) -> np.ndarray:
        """(6, 3) albedo of the room faces in :meth:`room_face_ids` order."""
        r = self.room
        return np.stack([r.wall_albedo] * 4 + [r.floor_albedo, r.ceiling_albedo])


def accent(rgb: np.ndarray) -> np.ndarray:
    """The darker shade used for an object's secondary parts: (3,) -> (3,)."""
    return 0.55 * np.asarray(rgb) + 0.45 * 0.25


def build_primitives(objects: list[SceneObject]) -> Primitives:
    """Assemble every object's parts into one :class:`Primitives` set (owner = object id)."""
    kinds, maps, radii, owners, albedos = [], [], [], [], []
    for obj in objects:
        main = np.asarray(NAMED_COLOURS[obj.colour])
        rotation = obj.rotation
        for part in obj.shape.parts:
            linear = rotation @ AXIS_PERMUTATION[part.axis] @ np.diag(part.half)
            centre = rotation @ np.asarray(part.centre) + obj.position
            maps.append(np.concatenate([linear, centre[:, None]], axis=1))
            kinds.append(part.kind)
            radii.append(part.radii)
            owners.append(obj.object_id)
            if part.colour == "main":
                albedos.append(main)
            elif part.colour == "accent":
                albedos.append(accent(main))
            else:
                albedos.append(np.asarray(part.colour))
    return make_primitives(np.array(kinds), np.array(maps), np.array(radii), np.array(owners), np.array(albedos))
