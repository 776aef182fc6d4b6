"""Long-term graph memory: entities and the relations between them, per namespace.

Two backends implement :class:`~runtime.memory.protocols.GraphStore`, each loaded by
name from :mod:`runtime.memory.registry` (this package imports neither):

- ``networkx`` (:class:`runtime.memory.graph.nx.NetworkxGraph`): embedded, an SQLite file
  is the truth and a networkx graph per namespace answers queries;
- ``neo4j`` (:class:`runtime.memory.graph.neo4j.Neo4jGraph`): a Neo4j server.

This module holds what both share, so they agree on every rule: how relation names are
normalised (:func:`relation_key`), how a merge is read (:func:`merge_rows`) and how an
entity mentioned in a text is found (:class:`MentionIndex`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from runtime.memory.records import Entity, Relation, normalise_name

__all__ = [
    "DEFAULT_TYPE",
    "EntityRow",
    "MentionIndex",
    "RelationRow",
    "merge_rows",
    "name_tokens",
    "relation_key",
]

#: the type of an entity nobody typed (a relation's end that was never merged itself)
DEFAULT_TYPE: Final = "thing"

_NOT_WORD = re.compile(r"[\W_]+")
# the same cuts as normalise_name's, which makes keys of these words
_PUNCT = re.compile(r"[^\w\s-]+")
_SPACE = re.compile(r"[\s_-]+")


def relation_key(name: str) -> str:
    """A relation's identity: lower snake_case. "Lives in", "LIVES_IN" and "lives-in" are
    all ``lives_in``; ``""`` when nothing of a word is left."""
    return _NOT_WORD.sub("_", name.casefold()).strip("_")


def name_tokens(text: str) -> tuple[str, ...]:
    """The words of ``text`` cut as :func:`normalise_name` cuts names into keys, but with a
    leading article kept: "A and B" mentions "a", whose key is ``a``."""
    return tuple(word for word in _SPACE.split(_PUNCT.sub(" ", text.casefold())) if word)


@dataclass(frozen=True, slots=True)
class EntityRow:
    """One entity to upsert: ``key`` is its identity, ``name`` its display name."""

    key: str
    name: str
    type: str


@dataclass(frozen=True, slots=True)
class RelationRow:
    """One relation to upsert: ``(source_key, relation, target_key)`` is its identity."""

    source_key: str
    relation: str
    target_key: str
    agent: str
    run_id: str
    ts: float


def merge_rows(
    entities: Iterable[Entity], relations: Iterable[Relation], *, now: float
) -> tuple[list[EntityRow], list[RelationRow]]:
    """What a merge writes, the same for every backend.

    Entities are keyed by :func:`normalise_name`; the first display name given wins, a
    later type other than :data:`DEFAULT_TYPE` wins. A relation's ends are added as
    entities (after the given ones, so a given display name beats a relation's spelling).
    Names that normalise to nothing and relations with an empty end or name are dropped:
    a model's extraction is the usual input and an empty name can never be found again.
    A relation without a timestamp is stamped ``now``. Repeated relations stay repeated:
    each is one more assertion, and the backends count them.
    """
    rows: dict[str, EntityRow] = {}

    def add(name: str, kind: str) -> str:
        key = normalise_name(name)
        if not key:
            return key
        kind = kind.strip() or DEFAULT_TYPE
        seen = rows.get(key)
        if seen is None:
            rows[key] = EntityRow(key, name.strip(), kind)
        elif kind != DEFAULT_TYPE and kind != seen.type:
            rows[key] = EntityRow(key, seen.name, kind)
        return key

    for entity in entities:
        add(entity.name, entity.type)
    edges: list[RelationRow] = []
    for relation in relations:
        name = relation_key(relation.relation)
        if not (name and normalise_name(relation.source) and normalise_name(relation.target)):
            continue
        source = add(relation.source, DEFAULT_TYPE)
        target = add(relation.target, DEFAULT_TYPE)
        ts = relation.ts or now
        edges.append(RelationRow(source, name, target, relation.agent, relation.run_id, ts))
    return list(rows.values()), edges


class MentionIndex:
    """Entity keys by their first word, to find the ones a text mentions.

    :meth:`find` reads the text once, word by word, and at each word tries only the keys
    that start with it, longest first: thousands of entities cost a dictionary lookup per
    word of text. Matches are whole words and never overlap: the leftmost, then longest,
    wins, so "New York City" is found in "I love New York City", "York" and "New York" are
    not.
    """

    __slots__ = ("_by_first",)

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self._by_first: dict[str, dict[tuple[str, ...], None]] = {}
        for key in keys:
            self.add(key)

    def add(self, key: str) -> None:
        words = tuple(key.split())
        if words:
            self._by_first.setdefault(words[0], {})[words] = None

    def discard(self, key: str) -> None:
        words = tuple(key.split())
        if not words:
            return
        bucket = self._by_first.get(words[0])
        if bucket is not None:
            bucket.pop(words, None)
            if not bucket:
                del self._by_first[words[0]]

    def find(self, words: Sequence[str]) -> list[str]:
        """The keys mentioned in ``words`` (see :func:`name_tokens`), in order of first
        mention, each once."""
        found: dict[str, None] = {}
        i = 0
        while i < len(words):
            bucket = self._by_first.get(words[i])
            best: tuple[str, ...] = ()
            if bucket is not None:
                for candidate in bucket:
                    size = len(candidate)
                    if size > len(best) and tuple(words[i : i + size]) == candidate:
                        best = candidate
            if best:
                found[" ".join(best)] = None
                i += len(best)
            else:
                i += 1
        return list(found)
