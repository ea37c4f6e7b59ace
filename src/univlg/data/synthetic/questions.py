"""ScanQA-style questions about a synthetic room, with their answers and the objects they concern.

Kinds: counting ("how many chairs are in the room?", "how many cups are on the desk?"), colour ("what color is
the chair closest to the door?"), existence ("is there a bed in the room?", yes and no balanced), "what is on the
X", "what is closest to the X" and "where is the X". Every object a question names is named unambiguously (its
class alone when it is the only one, otherwise an unambiguous description from :mod:`expressions`).
"""

from __future__ import annotations

import numpy as np

from univlg.data.records import Question
from univlg.data.synthetic.expressions import Description
from univlg.data.synthetic.language import SR3D_TEMPLATES, Utterance, slots_for
from univlg.data.synthetic.relations import SceneFacts, distance
from univlg.data.synthetic.shapes import OBJECT_CLASSES

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
QUESTION_KINDS = ("count", "count_on", "color", "exists", "what_on", "closest", "where")


def plural(label: str) -> str:
    """English plural of a class name."""
    if label.endswith("shelf"):
        return label[: -len("shelf")] + "shelves"
    return label + ("es" if label.endswith(("x", "s", "ch")) else "s")


def _count_answers(n: int) -> tuple[str, ...]:
    return (str(n), NUMBER_WORDS[n]) if n < len(NUMBER_WORDS) else (str(n),)


def _listing(facts: SceneFacts, ids: list[int]) -> str:
    """Answer naming objects: "cup", "2 cups" or "cup and monitor"."""
    labels = sorted(facts.objects[i].label for i in ids)
    distinct = sorted(set(labels))
    if len(distinct) == 1:
        return distinct[0] if len(labels) == 1 else f"{len(labels)} {plural(distinct[0])}"
    return " and ".join(distinct)


class QuestionMaker:
    """Builds the questions of one room from its facts and its unambiguous descriptions."""

    def __init__(self, facts: SceneFacts, descriptions: list[Description], rng: np.random.Generator):
        self.facts = facts
        self.rng = rng
        self.by_target: dict[int, list[Description]] = {}
        for d in descriptions:
            if not d.with_colour:
                self.by_target.setdefault(d.target, []).append(d)

    def reference(self, object_id: int, allow_colour: bool = True) -> str | None:
        """A noun phrase naming ``object_id`` unambiguously ("the desk", "the cup on the table"), or None."""
        facts = self.facts
        if len(facts.same_class(object_id)) == 1:
            return "the " + facts.objects[object_id].label
        options = [d for d in self.by_target.get(object_id, []) if allow_colour or d.relation != "color"]
        if not options:
            return None
        d = options[int(self.rng.integers(len(options)))]
        utterance = Utterance()
        utterance.fill(SR3D_TEMPLATES[d.relation][0], slots_for(facts, d))
        return utterance.text

    def count(self) -> list[tuple[str, str, tuple[str, ...], tuple[int, ...]]]:
        """Counting questions, as (kind, question, answers, object ids): per class, and per carrying object."""
        out = []
        for label, ids in sorted(self.facts.by_label.items()):
            text = f"how many {plural(label)} are in the room?"
            out.append(("count", text, _count_answers(len(ids)), tuple(ids)))
        for host in self.facts.objects:
            carried = [o.object_id for o in self.facts.objects if o.support == host.object_id]
            labels = {self.facts.objects[i].label for i in carried}
            ref = self.reference(host.object_id) if carried else None
            if ref is not None and len(labels) == 1:
                label = labels.pop()
                text = f"how many {plural(label)} are on {ref}?"
                out.append(("count_on", text, _count_answers(len(carried)), tuple(carried)))
        return out

    def colour(self) -> list[tuple]:
        """ "what color is <reference>?" for every object that can be named without its colour."""
        out = []
        for obj in self.facts.objects:
            ref = self.reference(obj.object_id, allow_colour=False)
            if ref is not None:
                out.append(("color", f"what color is {ref}?", (obj.colour,), (obj.object_id,)))
        return out

    def exists(self) -> list[tuple]:
        """ "is there a <class> in the room?" for every class, present (yes) or absent (no)."""
        present = sorted(self.facts.by_label)
        absent = [c for c in OBJECT_CLASSES if c not in self.facts.by_label]
        out = []
        for label in present:
            article = "an" if label[0] in "aeiou" else "a"
            out.append(
                ("exists", f"is there {article} {label} in the room?", ("yes",), tuple(self.facts.by_label[label]))
            )
        for label in absent:
            article = "an" if label[0] in "aeiou" else "a"
            out.append(("exists", f"is there {article} {label} in the room?", ("no",), ()))
        return out

    def what_on(self) -> list[tuple]:
        """ "what is on <reference>?" for every object carrying others."""
        out = []
        for host in self.facts.objects:
            carried = [o.object_id for o in self.facts.objects if o.support == host.object_id]
            ref = self.reference(host.object_id) if carried else None
            if ref is not None:
                out.append(("what_on", f"what is on {ref}?", (_listing(self.facts, carried),), tuple(carried)))
        return out

    def closest(self) -> list[tuple]:
        """ "what is closest to <reference>?" where the nearest class wins by at least 0.3 m."""
        out = []
        objects = self.facts.objects
        for obj in objects:
            others = [o for o in objects if o.object_id != obj.object_id]
            if len(others) < 2:
                continue
            dist = np.array([distance(obj, o) for o in others])
            order = np.argsort(dist, kind="stable")
            nearest = others[order[0]]
            rival = next((others[k] for k in order[1:] if others[k].label != nearest.label), None)
            if rival is not None and distance(obj, rival) - dist[order[0]] < 0.3:
                continue
            ref = self.reference(obj.object_id)
            if ref is not None:
                text = f"what is closest to {ref}?"
                out.append(("closest", text, (nearest.label,), (nearest.object_id,)))
        return out

    def where(self) -> list[tuple]:
        """ "where is the <class>?" for the only object of its class standing on another object."""
        out = []
        for obj in self.facts.objects:
            if obj.support < 0 or len(self.facts.same_class(obj.object_id)) > 1:
                continue
            host = self.facts.objects[obj.support]
            out.append(("where", f"where is the {obj.label}?", (f"on the {host.label}", host.label), (obj.object_id,)))
        return out


def make_questions(
    facts: SceneFacts, descriptions: list[Description], scene_id: str, split: str, count: int, rng: np.random.Generator
) -> list[Question]:
    """Up to ``count`` questions for one room, drawn round-robin over the question kinds."""
    maker = QuestionMaker(facts, descriptions, rng)
    pools = {
        "count": maker.count(),
        "color": maker.colour(),
        "exists": maker.exists(),
        "what_on": maker.what_on(),
        "closest": maker.closest(),
        "where": maker.where(),
    }
    pools["count_on"] = [q for q in pools["count"] if q[0] == "count_on"]
    pools["count"] = [q for q in pools["count"] if q[0] == "count"]
    yes = [q for q in pools["exists"] if q[2] == ("yes",)]
    no = [q for q in pools["exists"] if q[2] == ("no",)]
    for pool in list(pools.values()) + [yes, no]:
        rng.shuffle(pool)
    pools["exists"] = [q for pair in zip(yes, no) for q in pair]
    chosen: list[tuple] = []
    while len(chosen) < count and any(pools.values()):
        for kind in QUESTION_KINDS:
            if pools[kind] and len(chosen) < count:
                chosen.append(pools[kind].pop(0))
    return [
        Question(
            scene_id=scene_id,
            question=text,
            answers=answers,
            object_ids=ids,
            question_id=f"{split}-{scene_id}-{k}",
            question_type=kind,
            dataset="synthetic",
        )
        for k, (kind, text, answers, ids) in enumerate(chosen)
    ]
