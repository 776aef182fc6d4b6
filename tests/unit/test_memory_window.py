"""The window budget (runtime.memory.window.fit) on the in-process store, with fake
summarize functions standing in for the agent's model."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.memory.records import Turn
from runtime.memory.short_term import InProcessShortTerm
from runtime.memory.window import (
    MESSAGE_OVERHEAD,
    FitResult,
    fit,
    turn_tokens,
    window_tokens,
)

pytestmark = pytest.mark.anyio

NS = "chat/alice/session:s1"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Summarizer:
    """A fake model: records what it was asked to fold; answers ``text`` or raises."""

    def __init__(self, text: str = "", error: Exception | None = None) -> None:
        self.text = text
        self.error = error
        self.calls: list[list[Turn]] = []

    async def __call__(self, turns: Sequence[Turn]) -> str:
        self.calls.append(list(turns))
        if self.error is not None:
            raise self.error
        return self.text or "summary of " + ", ".join(t.content for t in turns)


def turns(*contents: str) -> list[Turn]:
    return [
        Turn(role="user" if i % 2 == 0 else "assistant", content=c, ts=float(i))
        for i, c in enumerate(contents)
    ]


def numbered(n: int) -> list[Turn]:
    return turns(*map(str, range(n)))


async def filled(window: list[Turn]) -> InProcessShortTerm:
    store = InProcessShortTerm()
    await store.append(NS, window)
    return store


async def test_a_window_within_budget_is_left_alone() -> None:
    window = numbered(5)
    store = await filled(window)
    model = Summarizer()
    result = await fit(store, NS, max_messages=5, max_tokens=1000, summarize=model)
    assert result == FitResult(
        turns=tuple(window), action="none", tokens=window_tokens(window), attempts=1
    )
    assert model.calls == []
    assert result.message == f"window within budget (5 turns, ~{result.tokens} tokens)"


async def test_too_many_turns_fold_the_oldest_into_a_summary() -> None:
    window = numbered(10)
    store = await filled(window)
    model = Summarizer()
    result = await fit(store, NS, max_messages=4, max_tokens=None, summarize=model, agent="bot")
    assert model.calls == [window[:7]]
    summary, *kept = result.turns
    assert kept == window[7:]
    assert (summary.role, summary.agent, summary.ts) == ("summary", "bot", window[6].ts)
    assert summary.content == "summary of 0, 1, 2, 3, 4, 5, 6"
    assert (result.action, result.removed, result.error) == ("folded", 7, None)
    assert result.message == "folded 7 turns into a summary"
    assert await store.window(NS) == list(result.turns)


async def test_an_old_summary_is_folded_into_the_new_one() -> None:
    window = numbered(6)
    store = await filled(window)
    model = Summarizer()
    first = await fit(store, NS, max_messages=4, max_tokens=None, summarize=model)
    old_summary = first.turns[0]
    late = turns("6", "7", "8")
    await store.append(NS, late)
    second = await fit(store, NS, max_messages=4, max_tokens=None, summarize=model)
    # the old summary heads what is folded, so the new one covers everything older
    assert model.calls[1] == [old_summary, *window[3:]]
    assert (second.action, second.removed) == ("folded", 4)
    assert [t.role for t in second.turns] == ["summary", "user", "assistant", "user"]
    assert list(second.turns[1:]) == late
    assert await store.window(NS) == list(second.turns)


async def test_without_summarize_the_oldest_turns_are_dropped() -> None:
    window = numbered(10)
    store = await filled(window)
    result = await fit(store, NS, max_messages=3, max_tokens=None, summarize=None)
    assert result.turns == tuple(window[7:])
    assert (result.action, result.removed, result.error) == ("dropped", 7, None)
    assert result.message == "dropped 7 turns"
    assert await store.window(NS) == window[7:]


async def test_the_token_budget_keeps_room_for_the_summary() -> None:
    window = turns(*("x" * 40 for _ in range(10)))  # 14 tokens each
    store = await filled(window)
    model = Summarizer(text="short")
    result = await fit(store, NS, max_messages=100, max_tokens=100, summarize=model)
    # 75 tokens for kept turns (a quarter kept for the summary): five turns of 14
    assert list(result.turns[1:]) == window[5:]
    assert result.tokens <= 100
    assert result.tokens == window_tokens(window[5:]) + turn_tokens(result.turns[0])


async def test_a_long_summary_is_cut_to_the_room_left() -> None:
    window = turns(*("x" * 40 for _ in range(10)))
    store = await filled(window)
    model = Summarizer(text="word " * 500)
    result = await fit(store, NS, max_messages=100, max_tokens=100, summarize=model)
    summary = result.turns[0]
    assert result.clipped and summary.content.endswith("…")
    assert result.tokens <= 100
    assert turn_tokens(summary) == 100 - window_tokens(window[5:])
    assert result.message == "folded 5 turns into a summary (cut to fit)"


async def test_a_failing_summarize_drops_instead_and_says_why() -> None:
    window = numbered(10)
    store = await filled(window)
    model = Summarizer(error=RuntimeError("model down"))
    result = await fit(store, NS, max_messages=4, max_tokens=None, summarize=model)
    assert len(model.calls) == 1
    # dropping needs no room for a summary: one more turn stays
    assert result.turns == tuple(window[6:])
    assert (result.action, result.removed) == ("dropped", 6)
    assert result.error == "RuntimeError: model down"
    assert result.message == "dropped 6 turns (summarizing failed: RuntimeError: model down)"
    assert await store.window(NS) == window[6:]


async def test_an_empty_summary_drops_instead() -> None:
    store = await filled(numbered(6))
    model = Summarizer(text="   ")
    result = await fit(store, NS, max_messages=2, max_tokens=None, summarize=model)
    assert (result.action, result.error) == ("dropped", "the summary was empty")
    assert [t.content for t in result.turns] == ["4", "5"]


async def test_one_message_leaves_no_room_for_a_summary() -> None:
    store = await filled(numbered(3))
    model = Summarizer()
    result = await fit(store, NS, max_messages=1, max_tokens=None, summarize=model)
    assert model.calls == []
    assert ([t.content for t in result.turns], result.action) == (["2"], "dropped")


async def test_the_newest_turn_stays_even_when_alone_it_is_over_budget() -> None:
    window = turns("a", "b", "y" * 400)
    store = await filled(window)
    model = Summarizer()
    result = await fit(store, NS, max_messages=10, max_tokens=50, summarize=model)
    assert model.calls == []  # no room left for a summary
    assert result.turns == (window[-1],)
    assert (result.action, result.removed) == ("dropped", 2)
    alone = await fit(store, NS, max_messages=10, max_tokens=50, summarize=model)
    assert (alone.action, alone.turns) == ("none", (window[-1],))


async def test_turns_appended_while_summarizing_are_kept() -> None:
    window = numbered(6)
    store = await filled(window)
    late = turns("late")

    async def slow_model(folded: Sequence[Turn]) -> str:
        await store.append(NS, late)  # another run answers meanwhile
        return "summary"

    result = await fit(store, NS, max_messages=3, max_tokens=None, summarize=slow_model)
    assert [t.content for t in result.turns] == ["summary", "4", "5"]
    assert await store.window(NS) == [*result.turns, *late]


async def test_another_run_compacting_first_means_reading_again() -> None:
    window = numbered(10)
    store = await filled(window)
    theirs: list[FitResult] = []

    async def racing_model(folded: Sequence[Turn]) -> str:
        if not theirs:  # the other run finishes its fit while our model is thinking
            theirs.append(await fit(store, NS, max_messages=4, max_tokens=None, summarize=None))
        return "mine"

    result = await fit(store, NS, max_messages=4, max_tokens=None, summarize=racing_model)
    assert result.attempts == 2
    assert result.action == "none"  # the other run already brought it within budget
    assert result.turns == theirs[0].turns == tuple(window[6:])


class RefusingStore(InProcessShortTerm):
    """Every compact is refused, as when other runs keep compacting first."""

    async def compact(
        self, namespace: str, head: Sequence[str], replacement: Sequence[Turn]
    ) -> bool:
        return False


async def test_when_every_compact_is_refused_the_result_is_trimmed_all_the_same() -> None:
    window = numbered(10)
    store = RefusingStore()
    await store.append(NS, window)
    result = await fit(store, NS, max_messages=4, max_tokens=None, summarize=None, attempts=3)
    assert (result.persisted, result.attempts, result.action) == (False, 3, "dropped")
    assert result.turns == tuple(window[6:])
    assert result.message.endswith("not saved: the window kept changing")
    assert await store.window(NS) == window


async def test_concurrent_fits_leave_one_summary_and_the_newest_turns() -> None:
    window = numbered(30)
    store = await filled(window)

    async def model(folded: Sequence[Turn]) -> str:
        await anyio.sleep(0.01)
        return f"summary of {len(folded)}"

    results: list[FitResult] = []

    async def one() -> None:
        results.append(await fit(store, NS, max_messages=5, max_tokens=None, summarize=model))

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(one)
    final = await store.window(NS)
    assert [t.role for t in final].count("summary") == 1
    assert final[0].role == "summary" and final[1:] == window[-4:]
    assert sum(r.action == "folded" for r in results) == 1
    assert all(len(r.turns) <= 5 for r in results)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_messages": 0, "max_tokens": None}, "max_messages"),
        ({"max_messages": 5, "max_tokens": 0}, "max_tokens"),
        ({"max_messages": 5, "max_tokens": None, "attempts": 0}, "attempts"),
    ],
)
async def test_impossible_budgets_are_refused(options: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await fit(InProcessShortTerm(), NS, summarize=None, **options)  # type: ignore[arg-type]


contents = st.text(alphabet="ab ", max_size=120)


@settings(max_examples=150, deadline=None)
@given(
    window=st.lists(contents, max_size=25),
    max_messages=st.integers(1, 12),
    max_tokens=st.none() | st.integers(1, 300),
    summary=st.none() | st.sampled_from(["", "s", "long " * 100]) | st.just("raise"),
)
def test_fit_keeps_the_newest_turns_within_budget(
    window: list[str], max_messages: int, max_tokens: int | None, summary: str | None
) -> None:
    original = turns(*window)

    async def model(folded: Sequence[Turn]) -> str:
        if summary == "raise":
            raise ValueError("no")
        return summary or ""

    async def go() -> tuple[FitResult, list[Turn]]:
        store = await filled(original)
        result = await fit(
            store,
            NS,
            max_messages=max_messages,
            max_tokens=max_tokens,
            summarize=None if summary is None else model,
        )
        return result, await store.window(NS)

    result, stored = anyio.run(go)
    assert list(result.turns) == stored
    kept = [t for t in stored if t.role != "summary"]
    assert kept == original[len(original) - len(kept) :]  # a suffix: the newest turns
    assert all(t.role != "summary" for t in stored[1:])  # at most one, at the head
    if original:
        assert stored[-1] == original[-1]  # the newest turn always stays
    assert len(stored) <= max_messages
    assert result.tokens == window_tokens(stored)
    if max_tokens is not None and result.tokens > max_tokens:
        # the one exception: the newest turn alone is over budget
        assert stored == original[-1:]
        assert turn_tokens(original[-1]) > max_tokens
    assert result.removed == len(original) - len(kept)
    if result.action == "folded":
        assert stored[0].role == "summary"
        assert turn_tokens(stored[0]) > MESSAGE_OVERHEAD
