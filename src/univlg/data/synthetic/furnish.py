"""Room recipes: which furniture groups a room gets and how they are arranged (see :mod:`layout`)."""

from __future__ import annotations

import numpy as np

from univlg.data.synthetic.layout import MAX_OBJECTS, MIN_OBJECTS, Furnisher, random_room
from univlg.data.synthetic.world import Room, SceneObject, shape_bounds

_FREE_ITEMS = ("ball", "box", "plant", "trash can", "lamp", "chair", "picture", "cabinet", "cup", "box", "ball")


def _several(f: Furnisher, parent: SceneObject, label: str, count: int, same_colour_p: float, **kw) -> None:
    colour = f.colour(label) if f.rng.random() < same_colour_p else None
    for _ in range(count):
        obj = f.on_surface(parent, parent.shape.tops[0], label, **kw)
        if obj is not None and colour is not None:
            obj.colour = colour


def bedroom(f: Furnisher) -> None:
    """A bed against a wall, night-stand cabinets beside it (with lamps), pillows, a picture above."""
    bed = f.against_wall("bed")
    if bed is None:
        return
    _several(f, bed, "pillow", int(f.rng.integers(1, 3)), 0.5)
    for side in (-1, 1):
        if f.rng.random() < 0.7:
            stand = f.beside(bed, side, "cabinet")
            if stand is not None and f.rng.random() < 0.6:
                f.on_surface(stand, stand.shape.tops[0], "lamp", small=True)
    if f.rng.random() < 0.6:
        f.on_wall("picture", near=bed)


def lounge(f: Furnisher) -> None:
    """A sofa against a wall with pillows, a low table in front, a plant or lamp beside, a picture above."""
    sofa = f.against_wall("sofa")
    if sofa is None:
        return
    _several(f, sofa, "pillow", int(f.rng.integers(1, 4)), 0.5)
    shape = f.shape("table", low=True)
    lo, _ = shape_bounds(shape)
    front = shape_bounds(sofa.shape)[1][1]
    table = f.on_floor_at(
        "table", shape, (f.rng.uniform(-0.2, 0.2), front + f.rng.uniform(0.3, 0.45) - lo[1]), sofa, sofa.yaw
    )
    if table is not None:
        _several(f, table, "cup", int(f.rng.integers(0, 3)), 0.0)
    for side in (-1, 1):
        if f.rng.random() < 0.5:
            f.beside(sofa, side, "plant" if f.rng.random() < 0.5 else "lamp")
    if f.rng.random() < 0.6:
        f.on_wall("picture", near=sofa)


def office(f: Furnisher) -> None:
    """A desk against a wall, a chair facing it, a monitor and cups on it, a bin beside or a box beneath."""
    desk = f.against_wall("desk")
    if desk is None:
        return
    chair = f.shape("chair")
    lo, hi = shape_bounds(chair)
    front = shape_bounds(desk.shape)[1][1]
    f.on_floor_at(
        "chair", chair, (f.rng.uniform(-0.2, 0.2), front + f.rng.uniform(0.08, 0.25) + hi[1]), desk, desk.yaw + np.pi
    )
    if f.rng.random() < 0.85:
        f.on_surface(desk, desk.shape.tops[0], "monitor", face_front=True)
    _several(f, desk, "cup", int(f.rng.integers(0, 3)), 0.0)
    if f.rng.random() < 0.3:
        f.on_surface(desk, desk.shape.tops[0], "lamp", small=True)
    if f.rng.random() < 0.5:
        f.beside(desk, int(f.rng.choice([-1, 1])), "trash can")
    if f.rng.random() < 0.4:
        f.on_surface(desk, desk.shape.under, "box", under=True)
    if f.rng.random() < 0.35:
        f.on_wall("picture", near=desk)


def dining(f: Furnisher) -> None:
    """A table in the room ringed by chairs facing it, cups on it, sometimes a box or ball beneath."""
    table = f.free_floor("table")
    if table is None:
        return
    t_lo, t_hi = shape_bounds(table.shape)
    colour = f.colour("chair") if f.rng.random() < 0.6 else None
    sides = [(0, 1), (0, -1), (1, 0), (-1, 0)]
    f.rng.shuffle(sides)
    for sx, sy in sides[: int(f.rng.integers(2, 5))]:
        chair = f.shape("chair")
        half = shape_bounds(chair)[1][1]
        gap = f.rng.uniform(0.05, 0.2) + half
        if sy:
            xy = (f.rng.uniform(-0.3, 0.3) * t_hi[0], t_hi[1] + gap if sy > 0 else t_lo[1] - gap)
            yaw = table.yaw + (np.pi if sy > 0 else 0.0)
        else:
            xy = (t_hi[0] + gap if sx > 0 else t_lo[0] - gap, f.rng.uniform(-0.3, 0.3) * t_hi[1])
            yaw = table.yaw + (np.pi / 2 if sx > 0 else -np.pi / 2)
        f.on_floor_at("chair", chair, xy, table, yaw, colour=colour)
    _several(f, table, "cup", int(f.rng.integers(1, 4)), 0.0)
    if f.rng.random() < 0.25:
        f.on_surface(table, table.shape.tops[0], "plant", small=True)
    if f.rng.random() < 0.2:
        f.on_surface(table, table.shape.tops[0], "box")
    if table.shape.under is not None and f.rng.random() < 0.45:
        f.on_surface(table, table.shape.under, str(f.rng.choice(["box", "ball"])), under=True)


def storage(f: Furnisher) -> None:
    """A cabinet with things on top, or a bookshelf, against a wall."""
    if f.rng.random() < 0.55:
        cabinet = f.against_wall("cabinet")
        if cabinet is not None:
            for _ in range(int(f.rng.integers(0, 3))):
                label = str(f.rng.choice(["box", "plant", "lamp", "cup"]))
                kw = {"small": True} if label in ("plant", "lamp") else {}
                f.on_surface(cabinet, cabinet.shape.tops[0], label, **kw)
    else:
        f.against_wall("bookshelf")


_GROUPS = (bedroom, lounge, office, dining, storage, office, dining, storage, lounge)


def _free_item(f: Furnisher) -> None:
    label = str(f.rng.choice(_FREE_ITEMS))
    if label == "picture":
        f.on_wall("picture")
    elif label == "cup":
        hosts = [o for o in f.objects if o.label in ("table", "desk", "cabinet") and o.shape.tops]
        if hosts:
            host = hosts[int(f.rng.integers(len(hosts)))]
            f.on_surface(host, host.shape.tops[0], "cup")
    elif label in ("cabinet", "bookshelf"):
        f.against_wall(label)
    else:
        f.free_floor(label)


def furnish(rng: np.random.Generator) -> tuple[Room, list[SceneObject]]:
    """A random room and 8-25 objects in it; object ids are shuffled so they carry no hint of the layout."""
    room = random_room(rng)
    f = Furnisher(rng, room.size)
    target = int(rng.integers(MIN_OBJECTS, MAX_OBJECTS + 1))
    for _ in range(1 + int(rng.random() < 0.35)):
        f.on_wall("door")
    for _ in range(int(rng.integers(1, 4))):
        f.on_wall("window")
    order = rng.permutation(len(_GROUPS))
    for index in order:
        if len(f.objects) >= target - 2:
            break
        _GROUPS[index](f)
    attempts = 0
    while (len(f.objects) < target or len(f.objects) < MIN_OBJECTS) and attempts < 60:
        _free_item(f)
        attempts += 1
    return room, _shuffle_ids(rng, f.objects)


def _shuffle_ids(rng: np.random.Generator, objects: list[SceneObject]) -> list[SceneObject]:
    new_id = rng.permutation(len(objects))
    for obj in objects:
        obj.object_id = int(new_id[obj.object_id])
        if obj.support >= 0:
            obj.support = int(new_id[obj.support])
    return sorted(objects, key=lambda o: o.object_id)
