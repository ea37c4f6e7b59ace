"""ScanEnts3D entity annotations: which words of an utterance mention which objects of the scene.

ScanEnts3D (Abdelreheem et al.) adds an ``entities`` field to NR3D rows and ScanRefer entries (Locate3D uses the
same layout): a list of ``[[token indices], ["<objectId>_<name>", ...]]`` pairs, indices into the row's own
token list. Here they become the records' char spans (object id -> spans in the raw utterance) and back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from univlg.data.formats.fields import Where, as_int, as_int_list, as_literal, as_str
from univlg.data.formats.tokens import align_tokens, spans_of_token_indices, token_indices_of_spans
from univlg.data.records import CharSpan


@dataclass(frozen=True)
class Entity:
    """One ScanEnts3D entity: token indices of the phrase and the ``(object id, name)`` pairs it refers to."""

    token_indices: tuple[int, ...]
    objects: tuple[tuple[int, str], ...]


def parse_entities(
    value: Any, where: Where, num_tokens: int, field: str = "entities", from_text: bool = False
) -> list[Entity]:
    """Validate a ScanEnts3D ``entities`` list (``from_text``: or its literal text, as in a CSV cell).

    Each token index must be < ``num_tokens``; each object must be written ``"<id>_<name>"`` with an integer id.
    """
    parsed = as_literal(value, where, field) if from_text else value
    if not isinstance(parsed, (list, tuple)):
        raise where.error(field, f"expected a list of [token indices, object names] pairs, got {value!r:.80}")
    entities = []
    for k, pair in enumerate(parsed):
        name = f"{field}[{k}]"
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise where.error(name, f"expected [token indices, object names], got {pair!r:.80}")
        indices = as_int_list(pair[0], where, f"{name}[0]")
        bad = [i for i in indices if i >= num_tokens]
        if bad:
            raise where.error(f"{name}[0]", f"token index {bad[0]} out of range for {num_tokens} tokens")
        if not isinstance(pair[1], (list, tuple)):
            raise where.error(f"{name}[1]", f"expected a list of '<id>_<name>' strings, got {pair[1]!r:.80}")
        objects = []
        for j, text in enumerate(pair[1]):
            text = as_str(text, where, f"{name}[1][{j}]")
            head, _, label = text.partition("_")
            objects.append((as_int(head, where, f"{name}[1][{j}]", minimum=0), label.replace("_", " ")))
        entities.append(Entity(tuple(indices), tuple(objects)))
    return entities


def entity_spans(utterance: str, tokens: list[str], entities: list[Entity]) -> dict[int, tuple[CharSpan, ...]]:
    """Object id -> char spans in ``utterance`` of every entity that mentions it (tokens aligned to the text).

    An entity whose tokens cannot be aligned to the utterance contributes no span.
    """
    offsets = align_tokens(utterance, tokens)
    spans: dict[int, list[CharSpan]] = {}
    for entity in entities:
        phrase = spans_of_token_indices(offsets, list(entity.token_indices))
        for object_id, _ in entity.objects:
            for span in phrase:
                if span not in spans.setdefault(object_id, []):
                    spans[object_id].append(span)
    return {object_id: tuple(sorted(found)) for object_id, found in spans.items() if found}


def entity_names(entities: list[Entity]) -> dict[int, str]:
    """Object id -> the name ScanEnts3D gives it (first mention wins)."""
    names: dict[int, str] = {}
    for entity in entities:
        for object_id, label in entity.objects:
            names.setdefault(object_id, label)
    return names


def build_entities(
    utterance: str, tokens: list[str], spans: dict[int, tuple[CharSpan, ...]], names: dict[int, str]
) -> list[list]:
    """The ScanEnts3D ``entities`` value for char ``spans`` over ``tokens``: ``[[[i, ...], ["<id>_<name>"]], ...]``.

    Objects whose spans cover the same tokens share one entity; entities are ordered by their first token.
    Names have spaces replaced by "_" (as in ScanEnts3D); a missing name is written "object".
    """
    offsets = align_tokens(utterance, tokens)
    grouped: dict[tuple[int, ...], list[str]] = {}
    for object_id in sorted(spans):
        indices = tuple(token_indices_of_spans(offsets, spans[object_id]))
        if indices:
            label = (names.get(object_id) or "object").replace(" ", "_")
            grouped.setdefault(indices, []).append(f"{object_id}_{label}")
    return [[list(indices), grouped[indices]] for indices in sorted(grouped, key=lambda ix: (ix[0], ix))]
