"""Keeping a conversation window within its budget, the same way on every backend.

A MemoryPolicy gives a window at most ``max_messages`` turns and, optionally,
``max_tokens`` estimated tokens (:func:`runtime.llm.types.estimate_tokens`, plus a few
tokens a message, as the gateway counts them). :func:`fit` reads a window and, when it is
over, shrinks it from the oldest end:

- with ``summarize`` (the policy's ``summarize: true``; the caller passes a function that
  asks the agent's model), the oldest turns are folded into one ``summary`` turn. A summary
  already at the head is folded in with them, so summaries never pile up. The newest turns
  kept leave room for the summary (a quarter of ``max_tokens`` unless told otherwise); a
  summary longer than the room left is cut to fit;
- without it, or when ``summarize`` fails or returns nothing, the oldest turns are dropped.

Either way the change is one :meth:`~runtime.memory.protocols.ShortTermStore.compact`, which
refuses when another run compacted the window first; :func:`fit` then reads it again and
starts over, a bounded number of times. Turns appended meanwhile are never touched. The
newest turn always stays, even when it alone is over ``max_tokens``: it is what the run is
about to answer.

The planning is plain functions of a list of turns; only :func:`fit` awaits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from runtime.llm.types import estimate_tokens
from runtime.memory.protocols import ShortTermStore
from runtime.memory.records import Turn

__all__ = [
    "ATTEMPTS",
    "MESSAGE_OVERHEAD",
    "SUMMARY_SHARE",
    "FitAction",
    "FitResult",
    "Summarize",
    "fit",
    "turn_tokens",
    "window_tokens",
]

#: tokens a message costs beyond its content (as ``runtime.llm.types.message_tokens`` counts)
MESSAGE_OVERHEAD: Final = 4
#: the share of ``max_tokens`` kept free for the summary when folding
SUMMARY_SHARE: Final = 0.25
#: how many times :func:`fit` reads and compacts again after another run compacted first
ATTEMPTS: Final = 3

#: folds turns (oldest first, perhaps headed by an older summary) into one text: the caller
#: asks the agent's model
Summarize = Callable[[Sequence[Turn]], Awaitable[str]]
#: what :func:`fit` did: nothing, folded the oldest turns into a summary, or dropped them
FitAction = Literal["none", "folded", "dropped"]


def turn_tokens(turn: Turn) -> int:
    """The estimated tokens ``turn`` costs in a model's context."""
    return MESSAGE_OVERHEAD + estimate_tokens(turn.content)


def window_tokens(turns: Sequence[Turn]) -> int:
    """The estimated tokens of a whole window."""
    return sum(turn_tokens(turn) for turn in turns)


@dataclass(frozen=True, slots=True, kw_only=True)
class FitResult:
    """What :func:`fit` left: the window to use, and what it did, for the caller's event."""

    #: the window as this call left it, oldest first (turns other runs appended after it
    #: was read are in the store, not here)
    turns: tuple[Turn, ...]
    action: FitAction
    #: how many turns were folded into the summary or dropped (a folded summary counts)
    removed: int = 0
    #: estimated tokens of ``turns``
    tokens: int = 0
    #: windows read: more than one when another run compacted first
    attempts: int = 1
    #: why ``summarize`` was not used though it was given (it raised, or returned nothing):
    #: the turns were dropped instead
    error: str | None = None
    #: the summary was longer than the room left and was cut
    clipped: bool = False
    #: ``False`` when every compact was refused (other runs kept compacting): ``turns`` is
    #: the window trimmed here only, the store still holds more
    persisted: bool = True

    @property
    def message(self) -> str:
        """One line for the ``memory.write`` event."""
        if self.action == "none":
            return f"window within budget ({len(self.turns)} turns, ~{self.tokens} tokens)"
        plural = "s" if self.removed != 1 else ""
        if self.action == "folded":
            text = f"folded {self.removed} turn{plural} into a summary"
            if self.clipped:
                text += " (cut to fit)"
        else:
            text = f"dropped {self.removed} turn{plural}"
            if self.error is not None:
                text += f" (summarizing failed: {self.error})"
        if not self.persisted:
            text += "; not saved: the window kept changing"
        return text


async def fit(
    store: ShortTermStore,
    namespace: str,
    *,
    max_messages: int,
    max_tokens: int | None,
    summarize: Summarize | None,
    agent: str = "",
    summary_tokens: int | None = None,
    attempts: int = ATTEMPTS,
) -> FitResult:
    """Bring the window of ``namespace`` within ``max_messages`` turns and ``max_tokens``
    estimated tokens (``None``: no token limit), folding the oldest turns into a summary
    written by ``summarize`` (whose turn is marked as ``agent``'s) or, without it, dropping
    them. ``summary_tokens`` is the room kept for the summary (default: a quarter of
    ``max_tokens``). Exceptions of ``summarize`` are caught and reported in the result;
    those of ``store`` propagate.
    """
    if max_messages < 1:
        raise ValueError(f"a window holds at least one turn (max_messages={max_messages})")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens is at least 1, not {max_tokens}")
    if attempts < 1:
        raise ValueError(f"attempts is at least 1, not {attempts}")
    if summary_tokens is None and max_tokens is not None:
        summary_tokens = int(max_tokens * SUMMARY_SHARE)
    turns: list[Turn] = []
    for attempt in range(1, attempts + 1):
        turns = await store.window(namespace)
        if _within(turns, max_messages, max_tokens):
            return FitResult(
                turns=tuple(turns), action="none", tokens=window_tokens(turns), attempts=attempt
            )
        head, keep, summary, error, clipped = await _shrink(
            turns, max_messages, max_tokens, summarize, agent, summary_tokens
        )
        replacement: tuple[Turn, ...] = () if summary is None else (summary,)
        if head and not await store.compact(namespace, [t.id for t in head], replacement):
            continue  # another run compacted first: read what it left
        result = (*replacement, *keep) if head else tuple(turns)
        return FitResult(
            turns=result,
            action=("folded" if summary is not None else "dropped") if head else "none",
            removed=len(head),
            tokens=window_tokens(result),
            attempts=attempt,
            error=error,
            clipped=clipped,
        )
    # Every compact was refused. Hand back the last window read, trimmed here, so the run's
    # context is within budget all the same; the next fit will try the store again.
    head, keep = _split(turns, max_messages, max_tokens)
    return FitResult(
        turns=tuple(keep),
        action="dropped",
        removed=len(head),
        tokens=window_tokens(keep),
        attempts=attempts,
        persisted=False,
    )


async def _shrink(
    turns: Sequence[Turn],
    max_messages: int,
    max_tokens: int | None,
    summarize: Summarize | None,
    agent: str,
    summary_tokens: int | None,
) -> tuple[list[Turn], list[Turn], Turn | None, str | None, bool]:
    """(head to remove, turns to keep, the summary or ``None``, why summarizing failed,
    whether the summary was cut) for a window over budget."""
    error: str | None = None
    if summarize is not None and max_messages >= 2:
        reserve = max(summary_tokens or 0, MESSAGE_OVERHEAD + 1) if max_tokens else 0
        limit = None if max_tokens is None else max(max_tokens - reserve, 0)
        head, keep = _split(turns, max_messages - 1, limit)
        room = None if max_tokens is None else max_tokens - window_tokens(keep)
        if head and (room is None or room > MESSAGE_OVERHEAD):
            try:
                text = (await summarize(head)).strip()
            except Exception as exc:  # noqa: BLE001 - the caller's model may fail any way
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if text:
                    content, clipped = _clip(text, room)
                    # the newest folded turn's time keeps the window ordered by ts
                    summary = Turn(role="summary", content=content, agent=agent, ts=head[-1].ts)
                    return head, keep, summary, None, clipped
                error = "the summary was empty"
    head, keep = _split(turns, max_messages, max_tokens)
    return head, keep, None, error, False


def _within(turns: Sequence[Turn], max_messages: int, max_tokens: int | None) -> bool:
    if len(turns) > max_messages:
        return False
    return max_tokens is None or window_tokens(turns) <= max_tokens


def _split(
    turns: Sequence[Turn], slots: int, max_tokens: int | None
) -> tuple[list[Turn], list[Turn]]:
    """(older turns, newest turns): as many newest turns as fit in ``slots`` turns and
    ``max_tokens`` tokens, and never fewer than one."""
    kept = 0
    used = 0
    for turn in reversed(turns):
        cost = turn_tokens(turn)
        if kept >= slots or (max_tokens is not None and used + cost > max_tokens):
            break
        kept += 1
        used += cost
    kept = max(kept, min(1, len(turns)))
    cut = len(turns) - kept
    return list(turns[:cut]), list(turns[cut:])


def _clip(text: str, room: int | None) -> tuple[str, bool]:
    """``text`` cut (with an ellipsis) to cost at most ``room`` tokens as a turn."""
    if room is None or MESSAGE_OVERHEAD + estimate_tokens(text) <= room:
        return text, False
    # estimate_tokens rounds len/4 up: 4 chars a token fit exactly
    chars = 4 * (room - MESSAGE_OVERHEAD)
    return text[: chars - 1].rstrip() + "…", True
