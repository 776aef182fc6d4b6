"""Facts, entities and relations out of text, by a model: what it is asked, how it answers.

- :func:`extraction_request` asks a model for an :class:`Extraction`, constrained by
  :data:`EXTRACTION_SCHEMA` (flat enough for llama.cpp's grammars and providers' strict
  JSON modes: no numeric bounds, no ``anyOf``).
- :func:`parse_extraction` reads the reply and never raises: a small model's junk (prose
  around the JSON, a reply cut off by ``max_tokens``, wrong types, empty names) yields
  what can be salvaged, and at worst an empty :class:`Extraction`.
- :func:`extraction_from_json` does the same for a reply already decoded (the rules of
  :func:`runtime.memory.rules.rule_extract` read their findings back through it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from runtime.llm.types import ModelRequest
from runtime.memory.graph import DEFAULT_TYPE, relation_key
from runtime.memory.records import Entity, Relation, normalise_name

__all__ = [
    "EXTRACTABLE",
    "EXTRACTION_SCHEMA",
    "MAX_ENTITIES",
    "MAX_FACTS",
    "MAX_RELATIONS",
    "USER",
    "Extraction",
    "Fact",
    "extraction_from_json",
    "extraction_request",
    "parse_extraction",
]

#: what :func:`extraction_request` can be asked for
EXTRACTABLE: Final = frozenset({"facts", "entities", "relations"})
MAX_FACTS: Final = 20
MAX_ENTITIES: Final = 50
MAX_RELATIONS: Final = 50
#: the entity that stands for the person the text comes from
USER: Final = "User"

_MAX_TEXT = 500
_MAX_NAME = 200
_MAX_TYPE = 40
_MAX_RELATION = 60


@dataclass(frozen=True, slots=True, kw_only=True)
class Fact:
    """Something worth remembering about the user; ``importance`` is 0..1."""

    text: str
    importance: float = 0.5


@dataclass(frozen=True, slots=True, kw_only=True)
class Extraction:
    """What one text yielded. Empty when nothing could be found or read."""

    facts: tuple[Fact, ...] = ()
    entities: tuple[Entity, ...] = ()
    relations: tuple[Relation, ...] = ()

    def only(self, what: Iterable[str]) -> Extraction:
        """This extraction with the kinds not in ``what`` emptied."""
        keep = frozenset(what)
        return Extraction(
            facts=self.facts if "facts" in keep else (),
            entities=self.entities if "entities" in keep else (),
            relations=self.relations if "relations" in keep else (),
        )

    def as_json(self) -> dict[str, Any]:
        """The shape of :data:`EXTRACTION_SCHEMA`: what a model is asked to answer."""
        return {
            "facts": [{"text": f.text, "importance": f.importance} for f in self.facts],
            "entities": [{"name": e.name, "type": e.type} for e in self.entities],
            "relations": [
                {"source": r.source, "relation": r.relation, "target": r.target}
                for r in self.relations
            ],
        }


def _array_of(**properties: str) -> dict[str, Any]:
    return {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {name: {"type": kind} for name, kind in properties.items()},
            "required": list(properties),
            "additionalProperties": False,
        },
    }


#: A reply to :func:`extraction_request` (which asks for a subset of the three arrays).
#: Shared: copy it before changing it.
EXTRACTION_SCHEMA: Final[Mapping[str, Any]] = {
    "type": "object",
    "properties": {
        "facts": _array_of(text="string", importance="number"),
        "entities": _array_of(name="string", type="string"),
        "relations": _array_of(source="string", relation="string", target="string"),
    },
    "required": ["facts", "entities", "relations"],
    "additionalProperties": False,
}

_PROMPT_HEAD = (
    "You extract what is worth remembering from a conversation, for a long-term memory. "
    "Answer with one JSON object and nothing else. Its keys:"
)
_PROMPT_PARTS: Final = {
    "facts": (
        '- "facts": what the user says about themselves (name, home, work, family, '
        "preferences, plans), each a short sentence in the third person that starts with "
        '"The user", with an "importance" from 0 (trivia) to 1 (essential). Never a fact '
        "the text does not state."
    ),
    "entities": (
        '- "entities": the people, places, organizations and things named in the text, '
        'each with a "type" (person, place, organization, product, event, animal, '
        "language, or thing)."
    ),
    "relations": (
        '- "relations": links between two entities, as "source", "relation", "target"; '
        "the relation is a short snake_case verb phrase (lives_in, works_at, is_a, likes). "
        f'Write "{USER}" for the user.'
    ),
}
_PROMPT_TAIL = (
    "Use only what the text states; an empty list when it states nothing of a kind. "
    f"At most {MAX_FACTS} facts, {MAX_ENTITIES} entities and {MAX_RELATIONS} relations."
)


def extraction_request(
    text: str, *, agent: str, task: str | None, run_id: str, what: frozenset[str]
) -> ModelRequest:
    """A request (purpose ``extract``) for the ``what`` (a non-empty subset of
    :data:`EXTRACTABLE`) in ``text``, with the reply constrained to those keys of
    :data:`EXTRACTION_SCHEMA`. The last message is ``text`` itself, verbatim."""
    unknown = sorted(what - EXTRACTABLE)
    if unknown or not what:
        raise ValueError(
            f"cannot extract {unknown or 'nothing'}: ask for some of {sorted(EXTRACTABLE)}"
        )
    kinds = [kind for kind in ("facts", "entities", "relations") if kind in what]
    properties = EXTRACTION_SCHEMA["properties"]
    schema = {
        "type": "object",
        "properties": {kind: properties[kind] for kind in kinds},
        "required": kinds,
        "additionalProperties": False,
    }
    prompt = "\n".join([_PROMPT_HEAD, *(_PROMPT_PARTS[k] for k in kinds), _PROMPT_TAIL])
    return ModelRequest(
        messages=[{"role": "system", "content": prompt}, {"role": "user", "content": text}],
        purpose="extract",
        response_schema=schema,
        # Room for the caps above in short strings; a reply cut off is still salvaged.
        max_tokens=1500,
        temperature=0.0,
        agent=agent,
        task=task,
        run_id=run_id,
    )


# --- reading a model's reply ---------------------------------------------------------------


def parse_extraction(text: str) -> Extraction:
    """The extraction in a model's reply; never raises.

    Reads the first JSON object in ``text`` (code fences and prose around it are
    ignored; a reply cut off mid-way keeps its complete entries). Entries of the wrong
    shape or with empty names are dropped, importance is clamped to 0..1 (0.5 when
    missing), relation names become snake_case, duplicates go, and each kind is capped
    (:data:`MAX_FACTS`, :data:`MAX_ENTITIES`, :data:`MAX_RELATIONS`).
    """
    data = _json_object(text)
    if data is None:
        return Extraction()
    return extraction_from_json(data)


def extraction_from_json(data: Mapping[str, Any]) -> Extraction:
    """The extraction in a decoded reply (the object :data:`EXTRACTION_SCHEMA` describes),
    tidied as :func:`parse_extraction` tidies it; never raises."""
    return Extraction(
        facts=_facts(data.get("facts")),
        entities=_entities(data.get("entities")),
        relations=_relations(data.get("relations")),
    )


def _json_object(text: str) -> dict[str, Any] | None:
    start = text.find("{")
    if start < 0:
        return None
    body = text[start:]
    try:
        value, _ = json.JSONDecoder().raw_decode(body)
    except ValueError:
        value = _salvaged(body)
    return value if isinstance(value, dict) else None


def _salvaged(body: str, tries: int = 64) -> Any:
    """The longest prefix of a cut-off JSON document that ends a complete object or array,
    closed: ``{"facts": [{"text": "a"}, {"te`` gives ``{"facts": [{"text": "a"}]}``."""
    stack: list[str] = []
    cuts: list[tuple[int, str]] = []
    in_string = escaped = False
    for i, char in enumerate(body):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            stack.append("}" if char == "{" else "]")
        elif char in "}]":
            if not stack or stack.pop() != char:
                break
            if not stack:
                break
            cuts.append((i + 1, "".join(reversed(stack))))
    for end, closers in reversed(cuts[-tries:]):
        try:
            return json.loads(body[:end] + closers)
        except ValueError:
            continue
    return None


def _clean(value: Any, limit: int) -> str:
    return " ".join(value.split())[:limit] if isinstance(value, str) else ""


def _importance(value: Any) -> float:
    if isinstance(value, bool):
        return 0.5
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return 0.5
    if not isinstance(value, int | float) or math.isnan(value):
        return 0.5
    return min(1.0, max(0.0, float(value)))


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _facts(value: Any) -> tuple[Fact, ...]:
    out: dict[str, Fact] = {}
    for item in _items(value):
        if isinstance(item, str):
            item = {"text": item}
        if not isinstance(item, dict):
            continue
        text = _clean(item.get("text"), _MAX_TEXT)
        if text and text.casefold() not in out:
            out[text.casefold()] = Fact(text=text, importance=_importance(item.get("importance")))
        if len(out) >= MAX_FACTS:
            break
    return tuple(out.values())


def _entities(value: Any) -> tuple[Entity, ...]:
    out: dict[str, Entity] = {}
    for item in _items(value):
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict):
            continue
        name = _clean(item.get("name"), _MAX_NAME)
        kind = _clean(item.get("type"), _MAX_TYPE).casefold() or DEFAULT_TYPE
        key = normalise_name(name)
        if not key:
            continue
        seen = out.get(key)
        if seen is None:
            out[key] = Entity(name=name, type=kind)
        elif seen.type == DEFAULT_TYPE and kind != DEFAULT_TYPE:
            out[key] = Entity(name=seen.name, type=kind)
        if len(out) >= MAX_ENTITIES:
            break
    return tuple(out.values())


def _relations(value: Any) -> tuple[Relation, ...]:
    out: dict[tuple[str, str, str], Relation] = {}
    for item in _items(value):
        if not isinstance(item, dict):
            continue
        source = _clean(item.get("source"), _MAX_NAME)
        target = _clean(item.get("target"), _MAX_NAME)
        name = relation_key(_clean(item.get("relation"), _MAX_RELATION))
        identity = (normalise_name(source), name, normalise_name(target))
        if all(identity) and identity not in out:
            out[identity] = Relation(source=source, relation=name, target=target)
        if len(out) >= MAX_RELATIONS:
            break
    return tuple(out.values())
