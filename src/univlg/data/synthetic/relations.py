"""Spatial relations between the objects of a synthetic room, measured on their surface points, with margins.

Every relation is decided on what a model can see: each object's surface points (its axis-aligned box, centre,
the heights of its points over another object's footprint) plus, for view-independent left/right/front/behind,
the anchor's facing direction. A referring expression is only generated when it is unambiguous with room to
spare: the target satisfies the relation with a ``slack`` of +1 (stricter than the plain definition) while
every same-class distractor fails it even at a slack of -1 (looser), so small measurement differences cannot
flip the answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from univlg.data.synthetic.shapes import HAS_FRONT
from univlg.data.synthetic.surface import SurfacePoints
from univlg.data.synthetic.world import World

# relation name -> coarse type (ReferIt3D's "coarse_reference_type"; attributes are our addition)
RELATIONS = {
    "closest": "horizontal",
    "farthest": "horizontal",
    "between": "between",
    "on": "support",
    "supporting": "support",
    "above": "vertical",
    "below": "vertical",
    "left": "allocentric",
    "right": "allocentric",
    "front": "allocentric",
    "behind": "allocentric",
    "color": "attribute",
    "largest": "attribute",
    "smallest": "attribute",
}
SUPERLATIVES = frozenset({"closest", "farthest", "largest", "smallest"})


@dataclass
class ObjectFacts:
    """What the relations need of one object. points: (n, 3) room-frame surface points; lo, hi, centre: (3,);
    front: (2,) unit facing direction or None; half_width/half_depth: extent across / along the front."""

    object_id: int
    label: str
    colour: str
    support: int
    points: np.ndarray = field(repr=False)
    lo: np.ndarray
    hi: np.ndarray
    centre: np.ndarray
    volume: float
    front: np.ndarray | None = None
    half_width: float = 0.0
    half_depth: float = 0.0


class SceneFacts:
    """The objects of a world (structure excluded) with their measured geometry, and class bookkeeping."""

    def __init__(self, world: World, surface: SurfacePoints):
        order = np.argsort(surface.instance, kind="stable")
        bounds = np.searchsorted(surface.instance[order], np.arange(world.num_objects + 1))
        self.objects: list[ObjectFacts] = []
        for obj in world.objects:
            pts = surface.xyz[order[bounds[obj.object_id] : bounds[obj.object_id + 1]]].astype(np.float64)
            lo, hi = pts.min(axis=0), pts.max(axis=0)
            facts = ObjectFacts(obj.object_id, obj.label, obj.colour, obj.support, pts, lo, hi, (lo + hi) / 2,
                                float(np.prod(obj.shape.size)))  # fmt: skip
            if obj.label in HAS_FRONT:
                front = obj.front[:2] / np.linalg.norm(obj.front[:2])
                right = np.array([-front[1], front[0]])
                rel = pts[:, :2] - facts.centre[:2]
                facts.front, facts.half_width, facts.half_depth = (
                    front,
                    np.abs(rel @ right).max(),
                    np.abs(rel @ front).max(),
                )
            self.objects.append(facts)
        self.by_label: dict[str, list[int]] = {}
        for facts in self.objects:
            self.by_label.setdefault(facts.label, []).append(facts.object_id)

    def same_class(self, object_id: int) -> list[int]:
        """Ids of the objects sharing ``object_id``'s class, itself included."""
        return self.by_label[self.objects[object_id].label]

    def anchor_phrase(self, object_id: int) -> tuple[str, str] | None:
        """(colour or "", class) naming the object unambiguously: its class alone when it is the only one, else its
        colour and class when no other object of the class shares the colour; None otherwise."""
        obj = self.objects[object_id]
        peers = self.same_class(object_id)
        if len(peers) == 1:
            return "", obj.label
        if sum(self.objects[i].colour == obj.colour for i in peers) == 1:
            return obj.colour, obj.label
        return None


def _window(points: np.ndarray, lo: np.ndarray, hi: np.ndarray, expand: float) -> np.ndarray:
    """Rows of ``points`` (n, 3) whose xy lies in the box [lo, hi] (xy) grown by ``expand``."""
    inside = ((points[:, :2] >= lo[:2] - expand) & (points[:, :2] <= hi[:2] + expand)).all(axis=1)
    return points[inside]


def distance(a: ObjectFacts, b: ObjectFacts) -> float:
    """Distance between box centres in metres."""
    return float(np.linalg.norm(a.centre - b.centre))


def plan_overlap(t: ObjectFacts, a: ObjectFacts) -> float:
    """Overlap of the two floor-plan boxes, as a fraction of the smaller one."""
    size = np.clip(np.minimum(t.hi[:2], a.hi[:2]) - np.maximum(t.lo[:2], a.lo[:2]), 0.0, None)
    smaller = min(np.prod(t.hi[:2] - t.lo[:2]), np.prod(a.hi[:2] - a.lo[:2]))
    return float(np.prod(size) / max(smaller, 1e-9))


def above(t: ObjectFacts, a: ObjectFacts, slack: float) -> bool:
    """``t`` is above ``a``: their plans overlap, and ``a``'s points under ``t``'s footprint (grown by 2 cm per unit
    of slack) lie a gap below ``t``'s bottom. Tightening grows the footprint, the overlap and the gap."""
    if plan_overlap(t, a) < 0.3 + 0.1 * slack:
        return False
    under = _window(a.points, t.lo, t.hi, 0.02 * slack)
    return len(under) == 0 or under[:, 2].max() <= t.lo[2] - (0.06 + 0.04 * slack)


def below(t: ObjectFacts, a: ObjectFacts, slack: float) -> bool:
    """``t`` is below ``a``: their plans overlap, and ``a``'s points over ``t``'s footprint lie a gap above its top."""
    if plan_overlap(t, a) < 0.3 + 0.1 * slack:
        return False
    over = _window(a.points, t.lo, t.hi, 0.02 * slack)
    return len(over) == 0 or over[:, 2].min() >= t.hi[2] + (0.06 + 0.04 * slack)


def on(t: ObjectFacts, a: ObjectFacts, slack: float) -> bool:
    """``t`` stands on ``a``: placed there, and ``a``'s highest point under ``t`` meets ``t``'s bottom."""
    if t.support != a.object_id:
        return slack < 0 and on_geometry(t, a, 0.04)
    return on_geometry(t, a, 0.03 - 0.01 * slack)


def on_geometry(t: ObjectFacts, a: ObjectFacts, tolerance: float) -> bool:
    """Geometric support test: ``a``'s points under ``t`` top out within ``tolerance`` of ``t``'s bottom, which
    is clearly above ``a``'s own bottom."""
    under = _window(a.points, t.lo, t.hi, 0.0)
    return len(under) >= 3 and abs(under[:, 2].max() - t.lo[2]) <= tolerance and t.lo[2] > a.lo[2] + 0.1


def between(t: ObjectFacts, a: ObjectFacts, b: ObjectFacts, slack: float) -> bool:
    """``t``'s centre lies (in the floor plan) near the segment joining the anchors' centres, away from its ends."""
    ab = b.centre[:2] - a.centre[:2]
    length = float(np.linalg.norm(ab))
    if length < 1.0:
        return False
    rel = t.centre[:2] - a.centre[:2]
    s = float(rel @ ab) / length**2
    perp = abs(float(rel[0] * ab[1] - rel[1] * ab[0])) / length
    return 0.1 + 0.1 * slack <= s <= 0.9 - 0.1 * slack and perp <= max(0.3, 0.3 * length) * (1 - 0.4 * slack)


def side(t: ObjectFacts, a: ObjectFacts, which: str, slack: float) -> bool:
    """``t`` is to the ``which`` ("left", "right", "front", "behind") of ``a`` as seen by someone facing ``a``."""
    if a.front is None:
        return False
    rel = t.centre[:2] - a.centre[:2]
    right_when_facing = np.array([-a.front[1], a.front[0]])
    lateral, forward = float(rel @ right_when_facing), float(rel @ a.front)
    margin = 0.1 * slack
    if which in ("left", "right"):
        sign = -1.0 if which == "left" else 1.0
        return (
            sign * lateral >= a.half_width + margin
            and abs(forward) <= a.half_depth + 0.5 - 3 * margin
            and sign * lateral <= a.half_width + 1.5 - 3 * margin
        )
    sign = 1.0 if which == "front" else -1.0
    return (
        sign * forward >= a.half_depth + margin
        and abs(lateral) <= a.half_width + 0.1 - 2 * margin
        and sign * forward <= a.half_depth + 1.5 - 3 * margin
    )


def holds(relation: str, t: ObjectFacts, anchors: list[ObjectFacts], slack: float) -> bool:
    """Whether a binary (or ternary, for "between") relation holds at ``slack``."""
    if relation == "between":
        return between(t, anchors[0], anchors[1], slack)
    if relation == "on":
        return on(t, anchors[0], slack)
    if relation == "supporting":
        return on(anchors[0], t, slack)
    if relation == "above":
        return above(t, anchors[0], slack)
    if relation == "below":
        return below(t, anchors[0], slack)
    return side(t, anchors[0], relation, slack)


def superlative_winner(facts: SceneFacts, relation: str, candidates: list[int], anchor: int | None) -> int | None:
    """The one candidate that wins ``relation`` (closest/farthest to ``anchor``, largest/smallest) by a clear
    margin, or None when the top two are too close to call."""
    if relation in ("closest", "farthest"):
        values = np.array([distance(facts.objects[i], facts.objects[anchor]) for i in candidates])
        if relation == "farthest":
            values = -values
        order = np.argsort(values)
        best, second = abs(values[order[0]]), abs(values[order[1]])
        clear = abs(second - best) >= max(0.3, 0.2 * min(best, second))
        return candidates[order[0]] if clear else None
    measured = np.array([np.prod(facts.objects[i].hi - facts.objects[i].lo) for i in candidates])
    true = np.array([facts.objects[i].volume for i in candidates])
    sign = 1.0 if relation == "largest" else -1.0
    order_m, order_t = np.argsort(-sign * measured), np.argsort(-sign * true)
    if order_m[0] != order_t[0]:
        return None
    m_sorted, t_sorted = np.sort(measured), np.sort(true)
    ratio_m = m_sorted[-1] / m_sorted[-2] if sign > 0 else m_sorted[1] / m_sorted[0]
    ratio_t = t_sorted[-1] / t_sorted[-2] if sign > 0 else t_sorted[1] / t_sorted[0]
    return candidates[order_m[0]] if min(ratio_m, ratio_t) >= 1.5 else None
