"""Plain language records shared by every dataset format and the synthetic world.

Character spans are half-open ``(start, end)`` offsets into the record's text, so ``text[start:end]`` is the
mention. Object ids are the scene's instance ids (ScanNet ``objectId``; ReferIt3D/ScanRefer ``target_id``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

CharSpan = tuple[int, int]

QUESTION_PROMPT = " find relevant objects"  # appended to a question; its last two words span the relevant objects


@dataclass
class Referral:
    """A sentence that refers to one object of a 3D scene (SR3D, NR3D, ScanRefer, synthetic).

    ``spans`` maps an object id (the target and anchors) to the character spans that mention it;
    ``relation`` is the reference type (e.g. "closest", "between"); ``meta`` keeps dataset-specific flags such
    as ``view_dependent``, ``hard`` or ``unique`` used for the benchmark breakdowns.
    """

    scene_id: str
    utterance: str
    target_id: int
    anchor_ids: tuple[int, ...] = ()
    distractor_ids: tuple[int, ...] = ()
    spans: dict[int, tuple[CharSpan, ...]] = field(default_factory=dict)
    target_class: str = ""
    relation: str = ""
    dataset: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def target_spans(self) -> tuple[CharSpan, ...]:
        """Character spans of the target mention (empty when the source has none)."""
        return self.spans.get(self.target_id, ())


@dataclass
class Question:
    """A question about a 3D scene with its reference answers (ScanQA, SQA3D, synthetic).

    ``meta`` keeps source fields the record has no slot for (ScanQA object names, SQA3D alternative situations).
    """

    scene_id: str
    question: str
    answers: tuple[str, ...]
    object_ids: tuple[int, ...] = ()
    situation: str = ""
    question_id: str = ""
    question_type: str = ""
    dataset: str = ""
    meta: dict = field(default_factory=dict)

    def prompt(self) -> tuple[str, CharSpan]:
        """What the model reads (reference 3.1): the situation (SQA3D) and the question, then
        :data:`QUESTION_PROMPT`; and the span of "relevant objects", the phrase every relevant object maps to."""
        text = (f"{self.situation} {self.question}" if self.situation else self.question) + QUESTION_PROMPT
        return text, (len(text) - len("relevant objects"), len(text))


@dataclass
class ImageReferral:
    """A sentence that refers to one object of a 2D image (RefCOCO/+/g, synthetic frames).

    ``box_xyxy`` is the target box in pixels (x0, y0, x1, y1); ``segmentation`` is the COCO polygon list or RLE
    dict of the target, as stored in the instances file.
    """

    image_id: int
    file_name: str
    width: int
    height: int
    utterance: str
    box_xyxy: tuple[float, float, float, float]
    segmentation: list | dict | None = None
    category: str = ""
    ann_id: int = -1
    ref_id: int = -1
    split: str = ""
    spans: tuple[CharSpan, ...] = ()
    dataset: str = ""
    meta: dict = field(default_factory=dict)
