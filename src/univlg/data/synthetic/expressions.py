"""Every unambiguous description of an object in a room: (target, relation, anchors[, + colour]).

A description is kept only when the target's class has at least one other object in the room (a same-class
distractor), every anchor can be named unambiguously (its class alone, or colour and class) and is of another
class, and the relation singles the target out among its class with the margins of :mod:`relations`.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

from univlg.data.synthetic.relations import SceneFacts, holds, superlative_winner

BINARY = ("on", "supporting", "above", "below", "left", "right", "front", "behind")


@dataclass(frozen=True)
class Description:
    """``target`` singled out by ``relation`` to ``anchors``; with ``with_colour`` the target's colour is part of
    the description (only the colour and the relation together single it out)."""

    target: int
    relation: str
    anchors: tuple[int, ...] = ()
    with_colour: bool = False


def _binary_candidates(facts: SceneFacts, members: list[int], anchor: int, relation: str) -> list[Description]:
    objects = facts.objects
    a = [objects[anchor]]
    if relation in ("on", "supporting", "above", "below") and not _near_in_plan(facts, members, anchor):
        return []
    tight = [t for t in members if holds(relation, objects[t], a, 1.0)]
    if not tight:
        return []
    loose = {d for d in members if holds(relation, objects[d], a, -1.0)}
    found = []
    for t in tight:
        others = [d for d in members if d != t]
        if not any(d in loose for d in others):
            found.append(Description(t, relation, (anchor,)))
        elif not any(d in loose and objects[d].colour == objects[t].colour for d in others):
            found.append(Description(t, relation, (anchor,), with_colour=True))
    return found


def _near_in_plan(facts: SceneFacts, members: list[int], anchor: int) -> bool:
    """Cheap pre-check: some member's floor-plan box comes within 0.3 m of the anchor's."""
    a = facts.objects[anchor]
    for t in members:
        o = facts.objects[t]
        if (o.lo[:2] <= a.hi[:2] + 0.3).all() and (a.lo[:2] <= o.hi[:2] + 0.3).all():
            return True
    return False


def unique_descriptions(facts: SceneFacts) -> list[Description]:
    """All unambiguous descriptions of the room's objects, in a deterministic order."""
    found: list[Description] = []
    nameable = [o.object_id for o in facts.objects if facts.anchor_phrase(o.object_id) is not None]
    for label in sorted(facts.by_label):
        members = facts.by_label[label]
        if len(members) < 2:
            continue
        for t in members:
            if sum(facts.objects[d].colour == facts.objects[t].colour for d in members) == 1:
                found.append(Description(t, "color"))
        for relation in ("largest", "smallest"):
            winner = superlative_winner(facts, relation, members, None)
            if winner is not None:
                found.append(Description(winner, relation))
        anchors = [a for a in nameable if facts.objects[a].label != label]
        for anchor in anchors:
            for relation in ("closest", "farthest"):
                winner = superlative_winner(facts, relation, members, anchor)
                if winner is not None:
                    found.append(Description(winner, relation, (anchor,)))
            for relation in BINARY:
                found.extend(_binary_candidates(facts, members, anchor, relation))
        for a, b in combinations(anchors, 2):
            if facts.objects[a].label == facts.objects[b].label:
                continue
            objs = [facts.objects[a], facts.objects[b]]
            tight = [t for t in members if holds("between", facts.objects[t], objs, 1.0)]
            for t in tight:
                if not any(holds("between", facts.objects[d], objs, -1.0) for d in members if d != t):
                    found.append(Description(t, "between", (a, b)))
    return found
