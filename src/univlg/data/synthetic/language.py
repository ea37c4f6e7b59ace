"""Referring expressions in words: SR3D-style sentences and ScanRefer-style multi-sentence descriptions.

Sentences are assembled from pieces so the character span of every class-name mention is known exactly; the
first occurrence of the target's class name is always the target mention (as ReferIt3D's span rule assumes), and
anchor mentions follow. Templates vary the wording of each relation.
"""

from __future__ import annotations

import numpy as np

from univlg.data.formats.referit3d import encode_stimulus_id
from univlg.data.records import Referral
from univlg.data.synthetic.expressions import Description
from univlg.data.synthetic.relations import RELATIONS, SceneFacts

# {T} target class, {A} / {B} anchor phrases, {C} target colour
SR3D_TEMPLATES = {
    "closest": ("the {T} closest to the {A}", "find the {T} that is closest to the {A}", "the {T} nearest to the {A}"),
    "farthest": ("the {T} farthest from the {A}", "find the {T} that is farthest from the {A}",
                 "the {T} that is far from the {A}"),
    "between": ("the {T} between the {A} and the {B}", "the {T} that is between the {A} and the {B}",
                "find the {T} in between the {A} and the {B}"),
    "on": ("the {T} on the {A}", "the {T} that is on top of the {A}", "find the {T} sitting on the {A}"),
    "supporting": ("the {T} that supports the {A}", "the {T} with the {A} on it",
                   "find the {T} that has the {A} on top"),
    "above": ("the {T} above the {A}", "the {T} that is over the {A}", "find the {T} located above the {A}"),
    "below": ("the {T} under the {A}", "the {T} beneath the {A}", "find the {T} that is below the {A}"),
    "left": ("the {T} on the left when facing the {A}", "facing the {A}, the {T} on the left",
             "the {T} to the left of the {A} when you face it"),
    "right": ("the {T} on the right when facing the {A}", "facing the {A}, the {T} on the right",
              "the {T} to the right of the {A} when you face it"),
    "front": ("the {T} in front of the {A}", "find the {T} that is in front of the {A}"),
    "behind": ("the {T} behind the {A}", "find the {T} that is behind the {A}"),
    "color": ("the {C} {T}", "the {T} that is {C}", "find the {C} {T}"),
    "largest": ("the largest {T}", "the biggest {T}", "find the {T} that is the largest"),
    "smallest": ("the smallest {T}", "the {T} that is the smallest", "find the smallest {T}"),
}  # fmt: skip
# second sentence of a ScanRefer-style description ("it" is the target)
SENTENCE_TEMPLATES = {
    "closest": "it is the {T} closest to the {A}.",
    "farthest": "it is the {T} farthest from the {A}.",
    "between": "it is between the {A} and the {B}.",
    "on": "it is on top of the {A}.",
    "supporting": "it has the {A} on it.",
    "above": "it is above the {A}.",
    "below": "it is under the {A}.",
    "left": "it is on the left when you face the {A}.",
    "right": "it is on the right when you face the {A}.",
    "front": "it is in front of the {A}.",
    "behind": "it is behind the {A}.",
    "largest": "it is the largest {T} in the room.",
    "smallest": "it is the smallest {T} in the room.",
}


Piece = tuple[str, "int | None"]


class Utterance:
    """Text built piece by piece, remembering the span of each object mention."""

    def __init__(self) -> None:
        self.text = ""
        self.spans: dict[int, list[tuple[int, int]]] = {}

    def add(self, piece: str, object_id: int | None = None) -> None:
        """Append ``piece``; when ``object_id`` is given the piece is a mention of that object."""
        if object_id is not None:
            self.spans.setdefault(object_id, []).append((len(self.text), len(self.text) + len(piece)))
        self.text += piece

    def fill(self, template: str, slots: dict[str, list[Piece]]) -> None:
        """Append ``template`` with each ``{X}`` replaced by the pieces ``slots[X]``."""
        rest = template
        while "{" in rest:
            head, _, tail = rest.partition("{")
            key, _, rest = tail.partition("}")
            self.add(head)
            for piece in slots[key]:
                self.add(*piece)
        self.add(rest)

    def frozen_spans(self) -> dict[int, tuple[tuple[int, int], ...]]:
        """Object id -> its mention spans ``((start, end), ...)``, as the records store them."""
        return {k: tuple(v) for k, v in sorted(self.spans.items())}


def slots_for(facts: SceneFacts, d: Description) -> dict[str, list[Piece]]:
    """Slot pieces: {T} the target's class word, {C} its colour, {A}/{B} anchor phrases whose class word is the
    mention (preceded by a colour word when the class alone is ambiguous)."""
    target = facts.objects[d.target]
    slots: dict[str, list[Piece]] = {"T": [(target.label, d.target)], "C": [(target.colour, None)]}
    for key, anchor in zip(("A", "B"), d.anchors):
        colour, label = facts.anchor_phrase(anchor)
        slots[key] = ([(colour + " ", None)] if colour else []) + [(label, anchor)]
    return slots


def _render(template: str, facts: SceneFacts, d: Description, utterance: Utterance | None = None) -> Utterance:
    utterance = utterance if utterance is not None else Utterance()
    utterance.fill(template, slots_for(facts, d))
    return utterance


def _record(facts: SceneFacts, scene_id: str, d: Description, utterance: Utterance, dataset: str, **meta) -> Referral:
    target = facts.objects[d.target]
    distractors = tuple(i for i in facts.same_class(d.target) if i != d.target)
    return Referral(
        scene_id=scene_id,
        utterance=utterance.text,
        target_id=d.target,
        anchor_ids=d.anchors,
        distractor_ids=distractors,
        spans=utterance.frozen_spans(),
        target_class=target.label,
        relation=d.relation,
        dataset=dataset,
        meta={
            "stimulus_id": encode_stimulus_id(scene_id, target.label, d.target, distractors),
            "coarse_relation": RELATIONS[d.relation],
            "anchor_types": [facts.objects[a].label for a in d.anchors],
            "entity_names": {i: facts.objects[i].label for i in (d.target, *d.anchors)},
            "with_colour": d.with_colour,
            **meta,
        },
    )


def sr3d_referral(facts: SceneFacts, scene_id: str, d: Description, rng: np.random.Generator) -> Referral:
    """One SR3D-style sentence for a description that singles out its target by the relation alone."""
    options = SR3D_TEMPLATES[d.relation]
    template = options[int(rng.integers(len(options)))]
    return _record(facts, scene_id, d, _render(template, facts, d), "sr3d")


def scanrefer_referral(
    facts: SceneFacts, scene_id: str, d: Description, extra: Description | None, rng: np.random.Generator
) -> Referral:
    """A ScanRefer-style description: "this is a <colour> <class>." plus the relation's sentence, plus
    optionally a second true fact about the target (``extra``)."""
    target = facts.objects[d.target]
    utterance = Utterance()
    article = "an" if target.colour[0] in "aeiou" else "a"
    opening = ("this is {a} {C} {T}. ", "there is {a} {C} {T} in the room. ", "the {T} is {C}. ")
    template = opening[int(rng.integers(len(opening)))].replace("{a}", article)
    utterance.fill(template, slots_for(facts, d))
    sentences = [d] if d.relation != "color" else []
    if extra is not None:
        sentences.append(extra)
    for k, sentence in enumerate(sentences):
        _render(
            SENTENCE_TEMPLATES[sentence.relation] + (" " if k + 1 < len(sentences) else ""), facts, sentence, utterance
        )
    utterance.text = utterance.text.rstrip()
    anchors = tuple(dict.fromkeys(a for s in sentences for a in s.anchors))
    full = Description(d.target, d.relation, anchors, d.with_colour or d.relation == "color")
    distractors = [i for i in facts.same_class(d.target) if i != d.target]
    # ScanRefer's JSON has no fields for these; they travel as extra keys, which its reader keeps in meta
    extra_meta = {
        "reference_type": d.relation,
        "distractor_ids": distractors,
        "relations": [[s.relation, list(s.anchors)] for s in sentences],
    }
    return _record(facts, scene_id, full, utterance, "scanrefer", **extra_meta)
