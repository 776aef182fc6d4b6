"""How recalled memories are ranked: relevance, recency and importance, weighted by policy.

``score = (w_rel * relevance / best + w_rec * recency + w_imp * importance) / sum(weights)``

- relevance: the store's cosine similarity to the query, 0..1, taken relative to the best
  candidate of the query (``best``), so the best match counts 1 whatever the embedder's
  scale: a lexical embedder's similarities sit near 0.2-0.4, a sentence model's near
  0.5-0.8, and raw values would let recency outweigh relevance for one and not the other
  (measured on the recall suite: hit@5 0.34 raw, 0.46 relative with the default embedder;
  0.82 and 0.90 with the sentence model);
- recency: ``0.5 ** (age_days / half_life_days)``: 1 for a memory written now, 0.5 at one
  half-life (30 days unless the policy says otherwise);
- importance: what the writer said, 0..1 (facts the user stated rank above tool chatter).

The defaults (0.5, 0.3, 0.2, 30 days) are CrewAI's. ``min_score`` applies to relevance
alone, so an old memory that answers the question is never dropped for being old; the
combined score only orders what passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runtime.memory.records import Memory

__all__ = ["Scored", "Weights", "rank", "recency"]

_DAY = 86_400.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Weights:
    relevance: float = 0.5
    recency: float = 0.3
    importance: float = 0.2
    half_life_days: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Scored:
    memory: Memory
    relevance: float
    recency: float
    score: float
    #: how old the memory was when it was ranked, in seconds
    age_s: float = 0.0

    @property
    def why(self) -> str:
        return (
            f"relevance {self.relevance:.2f}, recency {self.recency:.2f} "
            f"({_age(self.age_s)} old), importance {self.memory.importance:.2f} "
            f"-> score {self.score:.2f}"
        )

    def as_json(self) -> dict[str, Any]:
        memory = self.memory
        return {
            "id": memory.id,
            "text": memory.text,
            "kind": memory.kind,
            "agent": memory.agent,
            "created_at": memory.created_at,
            "importance": memory.importance,
            "relevance": round(self.relevance, 4),
            "recency": round(self.recency, 4),
            "score": round(self.score, 4),
            "why": self.why,
        }


def recency(created_at: float, now: float, half_life_days: float) -> float:
    age_days = max(0.0, now - created_at) / _DAY
    return float(0.5 ** (age_days / half_life_days))


def rank(
    hits: Sequence[tuple[Memory, float]],
    *,
    weights: Weights,
    now: float,
    top_k: int,
    min_score: float = 0.0,
) -> tuple[list[Scored], int]:
    """The ``top_k`` best of ``hits`` by combined score, and how many fell under
    ``min_score`` (by relevance)."""
    total = weights.relevance + weights.recency + weights.importance
    kept: list[Scored] = []
    under = 0
    best = max((r for _, r in hits), default=0.0) or 1.0
    for memory, relevance in hits:
        if relevance < min_score:
            under += 1
            continue
        fresh = recency(memory.created_at, now, weights.half_life_days)
        if total > 0:
            score = (
                weights.relevance * (relevance / best)
                + weights.recency * fresh
                + weights.importance * memory.importance
            ) / total
        else:
            score = relevance
        kept.append(
            Scored(
                memory=memory,
                relevance=relevance,
                recency=fresh,
                score=score,
                age_s=max(0.0, now - memory.created_at),
            )
        )
    kept.sort(key=lambda s: (-s.score, -s.relevance, s.memory.id))
    return kept[:top_k], under


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * _DAY:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / _DAY:.0f} days"
