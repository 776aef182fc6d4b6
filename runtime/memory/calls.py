"""The model calls memory makes on an agent's behalf: summarising a conversation window
that outgrew its budget, and extracting facts, entities and relations to remember.

Both go through the runner's gateway (``ask``), with the agent's models, so they are
retried, fall back and are counted in the run's usage like the agent's own calls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from runtime.memory.records import Turn

if TYPE_CHECKING:
    from runtime.llm.types import Message, ModelRequest, ModelResponse
    from runtime.memory.extract import Extraction

__all__ = ["Ask", "extract", "summariser", "turn_message"]

#: how memory asks an agent's models: the runner's gateway call, charged to the run
Ask = Callable[[tuple[str, ...], "ModelRequest"], Awaitable["ModelResponse"]]


def summariser(
    ask: Ask, models: tuple[str, ...], agent: str, task: str | None, run_id: str
) -> Callable[[Sequence[Turn]], Awaitable[str]]:
    from runtime.agent import prompts
    from runtime.llm.types import ModelRequest

    async def summarize(turns: Sequence[Turn]) -> str:
        request = ModelRequest(
            messages=[
                {"role": "system", "content": prompts.SUMMARISE},
                {"role": "user", "content": "The conversation so far:"},
                *(turn_message(t) for t in turns),
            ],
            purpose="summarize",
            max_tokens=256,
            run_id=run_id,
            agent=agent,
            task=task,
        )
        response = await ask(models, request)
        return response.text.strip() or "(no summary)"

    return summarize


async def extract(
    ask: Ask | None,
    models: tuple[str, ...],
    text: str,
    *,
    agent: str,
    task: str | None,
    run_id: str,
    facts: bool,
    graph: bool,
    notes: dict[str, str],
) -> Extraction | None:
    """Facts, entities and relations in ``text``, by the agent's model (schema-constrained);
    ``None`` (and a note) when there is no model or the call fails: the run goes on."""
    from runtime.memory.extract import extraction_request, parse_extraction

    if ask is None or not models:
        notes["extract"] = "no model to extract facts and entities with"
        return None
    what = frozenset(
        (["facts"] if facts else []) + (["entities", "relations"] if graph else [])
    )
    request = extraction_request(text, agent=agent, task=task, run_id=run_id, what=what)
    try:
        response = await ask(models, request)
    except Exception as exc:  # noqa: BLE001 - a failed extraction loses facts, not the run
        notes["extract"] = f"extraction failed: {exc}"
        return None
    return parse_extraction(response.text)



def turn_message(turn: Turn, *, reader: str = "") -> Message:
    """A window's turn as a chat message for ``reader``. A summary is a user message, since
    not every chat template takes a second system message; in a crew's shared window, what
    another agent was asked and answered is a user message saying whose it was, so no agent
    takes another's words for its own."""
    if turn.role == "summary":
        return {"role": "user", "content": f"(Summary of our earlier conversation)\n{turn.content}"}
    if reader and turn.agent and turn.agent != reader:
        said = "was asked" if turn.role == "user" else "answered"
        return {"role": "user", "content": f"(Earlier, {turn.agent} {said}:)\n{turn.content}"}
    return {"role": turn.role, "content": turn.content}
