"""Short-term context: keep a conversation inside the model's context window.

First the oldest tool observations are cut down to a stub (the latest ones stay whole),
then, if that is not enough, the middle of the conversation is summarised by the model into
one message, and as a last resort the longest messages are shortened. The system message,
the task and the latest turns always survive, and a native tool call is never separated
from its result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from runtime.llm.types import Message, estimate_tokens, message_tokens

Count = Callable[[Sequence[Message]], int]

#: The latest observations are never trimmed: the agent is working with them.
KEEP_OBSERVATIONS = 2
#: Turns at the end of the conversation that summarising leaves alone.
KEEP_TAIL = 4

Summarise = Callable[[Sequence[Message]], Awaitable[str]]


def is_observation(message: Message) -> bool:
    return message.get("role") == "tool" or bool(message.get("name") == "observation")


def trimmed(content: str) -> str:
    return f"[observation trimmed to fit the context window: {len(content):,} characters]"


async def fit(
    messages: list[Message], budget: int, summarise: Summarise, count: Count = message_tokens
) -> list[Message]:
    """``messages`` cut down to at most ``budget`` estimated tokens (a new list; the
    input is not changed). ``count`` estimates a conversation's tokens (the agent loop
    passes one that remembers the messages it has counted)."""
    if count(messages) <= budget:
        return messages
    out = [dict(m) for m in messages]
    observations = [i for i, m in enumerate(out) if is_observation(m)][:-KEEP_OBSERVATIONS]
    for i in observations:
        content = str(out[i].get("content") or "")
        if not content.startswith("[observation trimmed"):
            out[i]["content"] = trimmed(content)
        if message_tokens(out) <= budget:
            return out
    out = await _summarise_middle(out, summarise)
    if message_tokens(out) <= budget:
        return out
    return _shorten_longest(out, budget)


async def _summarise_middle(out: list[Message], summarise: Summarise) -> list[Message]:
    start, end = 2, len(out) - KEEP_TAIL
    while end > start and out[end].get("role") == "tool":  # keep a call with its result
        end -= 1
    if end - start < 2:
        return out
    summary = await summarise(out[start:end])
    note = {"role": "user", "content": f"Summary of the earlier steps:\n{summary}"}
    return [*out[:start], note, *out[end:]]


def _shorten_longest(out: list[Message], budget: int) -> list[Message]:
    while message_tokens(out) > budget:
        longest = max(range(len(out)), key=lambda i: len(str(out[i].get("content") or "")))
        content = str(out[longest].get("content") or "")
        excess = message_tokens(out) - budget
        keep = max(0, len(content) - 4 * excess - 64)
        if keep >= len(content) or not content:
            break  # nothing left to cut: the caller's budget is below the fixed overhead
        half = keep // 2
        out[longest] = {
            **out[longest],
            "content": f"{content[:half]}\n[... {len(content) - keep:,} characters cut ...]\n"
            f"{content[len(content) - half :] if half else ''}",
        }
        if estimate_tokens(content) <= 16:
            break
    return out
