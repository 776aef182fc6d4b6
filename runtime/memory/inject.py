"""A policy's own ``inject.template``: Jinja2 (sandboxed, as every kiln template), given

- ``memories``: what was recalled, best first; each has ``text``, ``store`` (``vector``,
  ``graph``, ``episodic``), and for vector memories ``kind``, ``agent``, ``score``,
  ``relevance``, ``created_at`` (Unix seconds);
- ``query``: what the memories were recalled for (the task's prompt).

The compiler checks that a template reads nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runtime.memory.scoring import Scored

__all__ = ["render_template"]


def render_template(
    source: str,
    query: str,
    scored: Sequence[Scored],
    relations: Sequence[str],
    episodes: Sequence[Mapping[str, Any]],
) -> str:
    from compiler.templates import environment

    memories: list[dict[str, Any]] = [{"store": "vector", **s.as_json()} for s in scored]
    memories.extend({"store": "graph", "text": r} for r in relations)
    memories.extend({"store": "episodic", **e} for e in episodes)
    return environment().from_string(source).render(memories=memories, query=query).strip()
