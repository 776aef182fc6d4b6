"""What recall hands the model: one block of text, kiln's own or the policy's
``inject.template``: Jinja2 (sandboxed, as every kiln template), given

- ``memories``: what was recalled, best first; each has ``text``, ``store`` (``vector``,
  ``graph``, ``episodic``), and for vector memories ``kind``, ``agent``, ``score``,
  ``relevance``, ``created_at`` (Unix seconds);
- ``query``: what the memories were recalled for (the task's prompt).

The compiler checks that a template reads nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from runtime.memory.records import MemoryStoreError
from runtime.memory.scoring import Scored

if TYPE_CHECKING:
    from specs.memory_policy import MemoryPolicySpec

__all__ = ["render", "render_template"]


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
    try:
        return environment().from_string(source).render(memories=memories, query=query).strip()
    except Exception as exc:  # noqa: BLE001 - the policy's template, never kiln's crash
        raise MemoryStoreError(
            f"its inject.template cannot be rendered: {type(exc).__name__}: {exc}"
        ) from None


def render(
    spec: MemoryPolicySpec,
    query: str,
    scored: Sequence[Scored],
    relations: Sequence[str],
    episodes: Sequence[Mapping[str, Any]],
) -> str:
    """The block recall injects: memories best first, relations, past runs; ``""`` when
    there is nothing."""
    if spec.inject.template is not None:
        return render_template(spec.inject.template, query, scored, relations, episodes)
    parts: list[str] = []
    if scored:
        lines = "\n".join(f"- {s.memory.text}" for s in scored)
        parts.append(f"What you remember that may help (most relevant first):\n{lines}")
    if relations:
        lines = "\n".join(f"- {r}" for r in relations)
        parts.append(f"What you know about the things mentioned:\n{lines}")
    if episodes:
        lines = "\n".join(f"- {e.get('status')}: {str(e.get('text', ''))[:300]}" for e in episodes)
        parts.append(f"Past runs like this one:\n{lines}")
    return "\n\n".join(parts)
